/**
 * Finding a differencing VHD's parent costs work linear in the chain's depth. Each level here
 * names two candidates, [M(i+1), L(i+1)], and expects L(i+1)'s id: M opens fine but is the wrong
 * disk. Opening each candidate's whole chain before checking its id made that 2^depth opens
 * (1.8 s at depth 10, over a minute at 16); the id is now read from the footer first.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CorruptImageError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { FileSource } from '../../src/stream/source.js';
import { workDir } from '../helpers/work.js';
import { buildVhd, utf16le, type BuildSpec } from './build.js';

const root = workDir('vhd-parent-search');
const BS = 1 << 21;
const SIZE = 2 * BS;
const DEPTH = 24;

const uuid = (kind: string, level: number) => new Uint8Array(Buffer.from(`${kind}${String(level).padStart(15, '0')}`, 'latin1'));

/** Levels 0..depth of L and M disks; every level names M then L of the next and expects L's id. */
function ladder(dir: string, depth: number, named: (next: number) => string[] = (next) => [`M${next}.vhd`, `L${next}.vhd`]): void {
  for (const kind of ['L', 'M']) {
    const base: BuildSpec = { type: 'dynamic', size: SIZE, blockSize: BS, uuid: uuid(kind, depth), blocks: [{ index: 1, data: new Uint8Array(BS).fill(kind.charCodeAt(0)) }] };
    writeFileSync(join(dir, `${kind}${depth}.vhd`), buildVhd(base).bytes);
  }
  for (let i = depth - 1; i >= 0; i--) {
    for (const kind of ['L', 'M']) {
      const spec: BuildSpec = {
        type: 'differencing',
        size: SIZE,
        blockSize: BS,
        uuid: uuid(kind, i),
        blocks: [],
        parent: { uuid: uuid('L', i + 1), unicodeName: '', locators: named(i + 1).map((n) => ({ code: 'W2ru', data: utf16le(n) })) },
      };
      writeFileSync(join(dir, `${kind}${i}.vhd`), buildVhd(spec).bytes);
    }
  }
}

/** Counts file opens; past `budget` every open fails, so an exponential search fails fast instead of running for hours. */
function countOpens(budget: number): { readonly count: number } {
  const real = FileSource.open.bind(FileSource);
  const counter = { count: 0 };
  vi.spyOn(FileSource, 'open').mockImplementation(async (path, name) => {
    if (++counter.count > budget) throw new Error(`more than ${budget} file opens: the parent search is not linear`);
    return real(path, name);
  });
  return counter;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('differencing VHD parent search', () => {
  it(`opens a chain ${DEPTH} deep with two candidates per level in a number of opens linear in the depth`, async () => {
    const dir = join(root, 'ladder');
    mkdirSync(dir);
    ladder(dir, DEPTH);
    // Per level: one footer read of M, one of L, one open of L.
    const opens = countOpens(4 * (DEPTH + 1));
    const r = await openImage(join(dir, 'L0.vhd'));
    try {
      expect(opens.count).toBeLessThanOrEqual(3 * DEPTH + 1);
      // Every level resolved to L: the base's data is L's.
      expect((await r.read(BS, 512))[0]).toBe('L'.charCodeAt(0));
      expect(r.info().backingFile).toBe('L1.vhd');
    } finally {
      await r.close();
    }
  });

  it('a level whose only candidate has the wrong id fails with the ids, after one footer read of it', async () => {
    const dir = join(root, 'wrong');
    mkdirSync(dir);
    ladder(dir, DEPTH, (next) => [`M${next}.vhd`]);
    const opens = countOpens(4);
    const err = await openImage(join(dir, 'L0.vhd')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err).toMatchObject({ field: 'parentUuid' });
    expect((err as Error).message).toMatch(/M1\.vhd has unique id/);
    expect(opens.count).toBe(2);
  });

  it('a candidate that is no VHD is passed over for the next one, and named when none fits', async () => {
    const dir = join(root, 'junk');
    mkdirSync(dir);
    ladder(dir, 2);
    writeFileSync(join(dir, 'M1.vhd'), Buffer.alloc(4096, 0x61));
    const r = await openImage(join(dir, 'L0.vhd'));
    expect(r.info().backingFile).toBe('L1.vhd');
    await r.close();
    const only = join(root, 'junk-only');
    mkdirSync(only);
    ladder(only, 2, (next) => [`M${next}.vhd`]);
    writeFileSync(join(only, 'M1.vhd'), Buffer.alloc(4096, 0x61));
    const err = await openImage(join(only, 'L0.vhd')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptImageError);
    expect((err as Error).message).toMatch(/M1\.vhd: not a VHD image/);
  });
});
