/**
 * What a new user of `guestkit pipeline` hit first (issue 14): output folders that were not
 * created, a "valid" plan that then failed, no --force, stages that had to be named, EIO for
 * every I/O error, and an interruption that did not say how to go on.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File, workDir } from '../helpers/work.js';
import { MAX_ENTRY_BYTES } from '../../src/pipeline/entry-guard.js';
import { MAX_OPTION_KEYS } from '../../src/pipeline/resolve.js';
import { makeSparseDisk, parseEvents, pipelineCli, pipelineCliAsync, summaryOf, writeJson } from './helpers.js';

const root = workDir('pipeline-user');
let caseNo = 0;

function folder(): string {
  const dir = join(root, `case${caseNo++}`);
  mkdirSync(dir);
  return dir;
}

describe('guestkit pipeline, as a new user meets it', () => {
  it("creates the outputs' folders, as the README's example plan needs", () => {
    const dir = folder();
    makeSparseDisk(join(dir, 'vm1.img'), 128 * 1024, 1);
    writeJson(join(dir, 'plan.json'), { disks: [{ source: 'vm1.img', output: 'out/nested/vm1.qcow2', stages: ['convert'] }] });
    const r = pipelineCli(['run', 'plan.json'], dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(existsSync(join(dir, 'out/nested/vm1.qcow2'))).toBe(true);
  });

  it('runs a minimal plan without stages as convert, then verify', () => {
    const dir = folder();
    makeSparseDisk(join(dir, 'a.img'), 128 * 1024, 2);
    writeFileSync(join(dir, 'plan.json'), '{"disks":[{"source":"a.img","output":"out/a.qcow2"}]}');
    const r = pipelineCli(['run', '--events', 'json', 'plan.json'], dir);
    expect(r.status, r.stderr).toBe(0);
    const events = parseEvents(r.stdout);
    expect(events.filter((e) => e.type === 'stage-done').map((e) => (e as { stage: string }).stage)).toEqual(['convert', 'verify']);
    // Without an output the default stages cannot run: the message says why.
    writeFileSync(join(dir, 'plan2.json'), '{"disks":[{"source":"a.img"}]}');
    const bad = pipelineCli(['validate', 'plan2.json'], dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/disks\[0\]\.output: required by the default stages \(convert, verify\)/);
  });

  it('validate reports what a run would trip over: a missing source, a folder that cannot be made, two disks writing one file', () => {
    const dir = folder();
    makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 3);
    makeSparseDisk(join(dir, 'b.img'), 64 * 1024, 4);
    mkdirSync(join(dir, 'out'));
    symlinkSync('out', join(dir, 'outlink'));
    writeFileSync(join(dir, 'blocker'), 'a file where a folder should be');
    writeJson(join(dir, 'plan.json'), {
      defaults: { stages: ['convert'] },
      disks: [
        { source: 'a.img', output: 'out/x.raw' },
        { source: 'b.img', output: 'outlink/x.raw' },
        { source: 'missing.img', output: 'out/m.raw' },
        { source: 'a.img', output: 'blocker/sub/a.raw' },
      ],
    });
    const r = pipelineCli(['validate', 'plan.json'], dir);
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr).toMatch(/disks\[1\]\.output: writes .*outlink\/x\.raw, which disks\[0\] writes too/);
    expect(r.stderr).toMatch(/disks\[2\]\.source: .*missing\.img does not exist/);
    expect(r.stderr).toMatch(/disks\[3\]\.output: the folder .*blocker\/sub cannot be created: .*blocker is not a folder/);
  });

  it('says how to go on when a finished plan is run again, and --force replaces the outputs', () => {
    const dir = folder();
    makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 5);
    writeJson(join(dir, 'plan.json'), { disks: [{ source: 'a.img', output: 'out/a.raw' }] });
    expect(pipelineCli(['run', 'plan.json'], dir).status).toBe(0);
    const again = pipelineCli(['run', '--events', 'json', 'plan.json'], dir);
    expect(again.status).toBe(1);
    const events = parseEvents(again.stdout);
    expect(summaryOf(events).failures[0].message).toMatch(/already exists.*--resume.*--force \(or "force": true/);
    expect(events.find((e) => e.type === 'disk-failed')).toMatchObject({ error: { code: 'EEXIST', error: 'OutputExistsError' } });
    // New content in the source: --force must write it.
    makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 6);
    const forced = pipelineCli(['run', '--force', 'plan.json'], dir);
    expect(forced.status, forced.stderr).toBe(0);
    expect(sha256File(join(dir, 'out/a.raw'))).toBe(sha256File(join(dir, 'a.img')));
    // The plan's own field does the same for one disk.
    makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 7);
    writeJson(join(dir, 'plan.json'), { disks: [{ source: 'a.img', output: 'out/a.raw', force: true }] });
    expect(pipelineCli(['run', '--no-state', 'plan.json'], dir).status).toBe(0);
    expect(sha256File(join(dir, 'out/a.raw'))).toBe(sha256File(join(dir, 'a.img')));
  });

  it('documents --force, the force field, the default stages and the limits in --help', () => {
    const help = pipelineCli(['run', '--help']).stdout;
    expect(help).toMatch(/--force +replace existing outputs/);
    expect(help).toMatch(/force +true: replace this disk's existing output/);
    expect(help).toMatch(/stages +what to do, in order; default: \["convert", "verify"\]/);
    expect(help).toContain(`at most ${MAX_OPTION_KEYS} keys; each entry of a plan is at most ${MAX_ENTRY_BYTES / 1024 / 1024} MiB`);
  });

  it('carries the real errno and a stable class name in JSON events', () => {
    const dir = folder();
    makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 8);
    writeJson(join(dir, 'plan.json'), { defaults: { stages: ['convert'] }, disks: [{ source: 'gone.img', output: 'out/g.raw' }, { source: 'a.img', output: 'out/a.raw' }] });
    const r = pipelineCli(['run', '--events', 'json', 'plan.json'], dir);
    expect(r.status).toBe(1);
    const failed = parseEvents(r.stdout).find((e) => e.type === 'disk-failed');
    expect(failed).toMatchObject({ disk: 'out/g.raw', error: { code: 'ENOENT', error: 'IoError', message: expect.stringMatching(/gone\.img/) } });
  });

  it('prints how to resume when interrupted with Ctrl-C', async () => {
    const dir = folder();
    for (let i = 0; i < 4; i++) writeFileSync(join(dir, `d${i}.img`), Buffer.alloc(8 * 1024 * 1024, i + 1));
    writeJson(join(dir, 'plan.json'), { concurrency: 1, disks: Array.from({ length: 4 }, (_, i) => ({ source: `d${i}.img`, output: `out/d${i}.raw`, stages: ['convert', 'verify', 'checksum'] })) });
    const child = pipelineCliAsync(['run', '--events', 'json', 'plan.json'], dir);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? String(code))));
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('"type":"disk-started"')) child.kill('SIGINT');
    });
    // The CLI dies of the signal itself (shells report 130).
    expect(['SIGINT', '130']).toContain(await exited);
    expect(stderr).toMatch(/interrupted; .*guestkit pipeline run --resume plan\.json/);
    // The hint is printed after the temporary output was removed, not instead of it.
    expect(existsSync(join(dir, 'out')) ? readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.tmp')) : []).toEqual([]);
  });
});
