/** Plan validation: every problem is reported, each with the path of the bad field. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workDir } from '../helpers/work.js';
import { validatePipelinePlan, PlanError } from '../../src/api/pipeline.js';
import type { PlanIssue } from '../../src/pipeline/errors.js';

const dir = workDir('pipeline-schema');

async function issuesOf(plan: unknown): Promise<PlanIssue[]> {
  // The plan's shape only: the checks against the machine have tests of their own.
  const e = await validatePipelinePlan(plan as never, { baseDir: dir, files: false }).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PlanError);
  return (e as PlanError).issues;
}

const ok = { source: 'a.img', output: 'a.raw', stages: ['convert', 'verify'] };

describe('plan validation', () => {
  it('accepts a valid plan and counts its disks', async () => {
    await expect(
      validatePipelinePlan({ concurrency: 2, retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 }, disks: [ok, { source: 'b.img', stages: ['detect', 'checksum'] }] }, { baseDir: dir, files: false }),
    ).resolves.toEqual({ disks: 2 });
  });

  it('names the stage that is not a stage', async () => {
    const issues = await issuesOf({ disks: [ok, ok, ok, { source: 'd.img', output: 'd.raw', stages: ['convert', 'verfy'] }].map((d, i) => ({ ...d, output: `o${i}.raw` })) });
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe('disks[3].stages[1]');
    expect(issues[0].message).toMatch(/unknown stage "verfy"/);
  });

  it('names bad fields of stages, disks and the header, all in one report', async () => {
    const issues = await issuesOf({
      concurrency: 0,
      retry: { attempts: 2, baseDelayMs: 500, maxDelayMs: 100 },
      disks: [
        { source: 'a.img', output: 'a.raw', stages: ['convert', { type: 'copy-to' }] },
        { source: 'b.img', output: 'b.raw', stages: ['convert', { type: 'checksum', expect: 'abc' }], colour: 'red' },
        { output: 'c.raw', stages: ['convert'] },
        42,
      ],
    });
    expect(issues.map((i) => i.path)).toEqual([
      'concurrency',
      'retry.maxDelayMs',
      'disks[0].stages[1].dir',
      'disks[1].stages[1].expect',
      'disks[1].colour',
      'disks[2].source',
      'disks[3]',
    ]);
  });

  it('checks the rules between stages after merging defaults, pointing at the defaults when they are the cause', async () => {
    const issues = await issuesOf({
      defaults: { stages: ['convert', 'verify'] },
      disks: [
        { source: 'a.img', output: 'a.raw' },
        { source: 'b.img' },
        { source: 'c.img', output: 'c.raw', stages: ['verify', 'convert'] },
        { source: 'd.img', output: 'd.raw', stages: ['convert', 'convert'] },
        { source: 'e.img', stages: [{ type: 'checksum', of: 'output' }] },
      ],
    });
    expect(issues).toEqual([
      { path: 'disks[1].output', message: 'required by the convert stage (stages[0])' },
      { path: 'defaults.stages[1]', message: 'verify compares the output with the source, and this disk has no output (for disks[1])' },
      { path: 'disks[2].stages[0]', message: 'verify must come after convert' },
      { path: 'disks[3].stages[1]', message: 'convert is already stage 0' },
      { path: 'disks[4].stages[0]', message: 'checksum of the output, and this disk has no output' },
    ]);
  });

  it('checks formats and format options against the drivers', async () => {
    const issues = await issuesOf({
      disks: [
        { source: 'a.img', output: 'a.raw', format: 'floppy', stages: ['convert'] },
        { source: 'b.img', output: 'b.raw', options: { zeroes: 'maybe' }, stages: ['convert'] },
        { source: 'c.img', output: 'c.raw', options: 'colour=red', stages: ['convert'] },
        { source: 'd.img', output: 'd.raw', compress: true, stages: ['convert'] },
        { source: 'e.img', sourceFormat: 'nope', stages: ['detect'] },
      ],
    });
    expect(issues.map((i) => [i.path, i.message.split(';')[0]])).toEqual([
      ['disks[0].format', "unknown output format 'floppy'"],
      ['disks[1].options', "invalid raw option 'zeroes': Invalid input: expected boolean, received string"],
      ['disks[2].options', expect.stringMatching(/colour/)],
      ['disks[3].compress', 'format raw does not support compression'],
      ['disks[4].sourceFormat', "unknown format 'nope'"],
    ]);
  });

  it('refuses duplicate ids, two disks writing one file, and a disk reading what another writes', async () => {
    const issues = await issuesOf({
      disks: [
        { id: 'x', source: 'a.img', output: 'out/a.raw', stages: ['convert'] },
        { id: 'x', source: 'b.img', output: 'out/b.raw', stages: ['convert'] },
        { source: 'c.img', output: 'out/a.raw', stages: ['convert'] },
        { source: 'out/b.raw', output: 'out/b2.raw', stages: ['convert'] },
        { source: 'd.img', output: 'd.raw', stages: ['convert', { type: 'copy-to', dir: 'out' }] },
        { source: 'e.img', output: 'e.img', stages: ['convert'] },
      ],
    });
    // Exactly these: d.raw copied into out/ collides with nothing.
    expect(issues.map((i) => i.path)).toEqual(['disks[1].id', 'disks[2].output', 'disks[3].source', 'disks[5].output']);
    expect(issues[1].message).toMatch(/disks\[0\] writes too/);
    expect(issues[2].message).toMatch(/is written by disks\[1\]/);
    expect(issues[3].message).toBe('is the same file as the source');
  });

  it('reports JSON-lines problems with their line numbers and keeps going after a bad line', async () => {
    const path = join(dir, 'plan.jsonl');
    writeFileSync(
      path,
      [
        '{"settings": {"concurrency": 2, "defaults": {"stages": ["convert"]}}}',
        '{"source": "a.img", "output": "a.raw"}',
        '',
        '# a comment',
        '{"source": "b.img", "output": "b.raw", "stages": ["convert", "chksum"]}',
        '{"source": "c.img", "output": ',
        '{"source": "d.img"}',
      ].join('\n'),
    );
    const e = await validatePipelinePlan(path, { files: false }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(PlanError);
    expect((e as PlanError).issues).toEqual([
      { path: 'disks[1].stages[1]', line: 5, message: expect.stringMatching(/unknown stage "chksum"/) },
      { path: 'disks[2]', line: 6, message: expect.stringMatching(/not valid JSON/) },
      { path: 'disks[3].output', line: 7, message: 'required by the convert stage (stages[0])' },
    ]);
    expect((e as PlanError).message).toMatch(/line 5: disks\[1\]\.stages\[1\]: unknown stage/);
  });

  it('locates JSON syntax errors by line and column, and hints at .jsonl for concatenated objects', async () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{\n  "disks": [\n    {"source": "a.img"}\n    {"source": "b.img"}\n  ]\n}\n');
    await expect(validatePipelinePlan(broken)).rejects.toThrow(/line 4, column 5/);
    const lines = join(dir, 'lines.json');
    writeFileSync(lines, '{"source": "a.img", "stages": ["detect"]}\n{"source": "b.img", "stages": ["detect"]}\n');
    await expect(validatePipelinePlan(lines)).rejects.toThrow(/must be named \.jsonl/);
  });

  it('refuses an empty plan, a plan without disks and a non-array disks field', async () => {
    expect(await issuesOf({ disks: [] })).toEqual([{ path: 'disks', message: 'the plan has no disks' }]);
    await expect(validatePipelinePlan({} as never)).rejects.toThrow(/disks: required/);
    const path = join(dir, 'nodisks.json');
    writeFileSync(path, '{"concurrency": 2, "disks": {"a": {"source": "x"}}}');
    await expect(validatePipelinePlan(path)).rejects.toThrow(/disks: must be an array of disks/);
  });
});
