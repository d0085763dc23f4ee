/**
 * Two disks writing one file lose a disk, however the two paths are spelt: through a symlinked
 * folder, `..`, or hard links to one inode. Validation compares what the paths name.
 */
import { existsSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workDir } from '../helpers/work.js';
import { runPipeline, validatePipelinePlan, PlanError } from '../../src/api/pipeline.js';
import { PathIdentities } from '../../src/stream/file-identity.js';
import { makeSparseDisk } from './helpers.js';

const root = workDir('pipeline-identity');
let caseNo = 0;

function setup() {
  const dir = join(root, `case${caseNo++}`);
  mkdirSync(join(dir, 'out'), { recursive: true });
  symlinkSync('out', join(dir, 'outlink'));
  makeSparseDisk(join(dir, 'a.img'), 64 * 1024, 1);
  makeSparseDisk(join(dir, 'b.img'), 64 * 1024, 2);
  return dir;
}

async function issuesOf(plan: unknown, baseDir: string) {
  const e = await validatePipelinePlan(plan as never, { baseDir }).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(PlanError);
  return (e as PlanError).issues;
}

describe('outputs compared by the file they name', () => {
  it('refuses out/x.raw and outlink/x.raw (a symlinked folder), naming both disks, and runs nothing', async () => {
    const dir = setup();
    const plan = { defaults: { stages: ['convert'] }, disks: [{ source: 'a.img', output: 'out/x.raw' }, { source: 'b.img', output: 'outlink/x.raw' }] };
    expect(await issuesOf(plan, dir)).toEqual([{ path: 'disks[1].output', message: `writes ${join(dir, 'outlink/x.raw')}, which disks[0] writes too` }]);
    await expect(runPipeline(plan, { baseDir: dir })).rejects.toThrow(/disks\[1\]\.output: writes .*which disks\[0\] writes too/);
    expect(existsSync(join(dir, 'out/x.raw'))).toBe(false);
  });

  it('sees through `..`, a folder still to be created, and existing hard links', async () => {
    const dir = setup();
    writeFileSync(join(dir, 'out/old.raw'), 'x');
    linkSync(join(dir, 'out/old.raw'), join(dir, 'hard.raw'));
    const plan = {
      defaults: { stages: ['convert'], force: true },
      disks: [
        { source: 'a.img', output: 'new/sub/y.raw' },
        { source: 'b.img', output: 'new/other/../sub/y.raw' },
        { source: 'a.img', output: 'out/old.raw' },
        { source: 'b.img', output: 'hard.raw' },
      ],
    };
    expect((await issuesOf(plan, dir)).map((i) => `${i.path}: ${i.message.replace(dir, '')}`)).toEqual([
      'disks[1].output: writes /new/sub/y.raw, which disks[0] writes too',
      'disks[3].output: writes /hard.raw, which disks[2] writes too',
    ]);
  });

  it('refuses a disk reading, through a symlink, what another disk writes, and an output that is its own source', async () => {
    const dir = setup();
    symlinkSync('b.img', join(dir, 'b-link.img'));
    const plan = {
      defaults: { stages: ['convert'], force: true },
      disks: [
        { source: 'outlink/a.raw', output: 'out/c.raw' },
        { source: 'a.img', output: 'out/a.raw' },
        { source: 'b.img', output: 'b-link.img' },
      ],
    };
    const issues = await issuesOf(plan, dir);
    expect(issues.map((i) => i.path)).toEqual(['disks[0].source', 'disks[0].source', 'disks[2].output']);
    expect(issues[1].message).toMatch(/is written by disks\[1\]/);
    expect(issues[2].message).toMatch(/is the same file as the source/);
  });

  it('keys a file by device and inode when it exists, else by its real folder', () => {
    const dir = setup();
    writeFileSync(join(dir, 'out/f'), 'x');
    const ids = new PathIdentities();
    expect(ids.identify(join(dir, 'outlink/f')).key).toBe(ids.identify(join(dir, 'out/f')).key);
    expect(ids.identify(join(dir, 'out/f')).key).toMatch(/^i:\d+:\d+$/);
    expect(ids.identify(join(dir, 'outlink/new/g')).key).toBe(`p:${join(dir, 'out/new/g')}`);
  });
});
