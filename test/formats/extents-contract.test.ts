/**
 * The extents contract (types.ts), one rule for every registered driver that reads: extents cover
 * the disk in order without gaps; a run kind 'zero' reads as zeros; every non-zero byte lies in a
 * 'data' run; and an image without a backing file never says 'unallocated' — its holes are 'zero'
 * (qemu-img map's "present" is kept apart, in `present`). 'unallocated' appears only for an image
 * that names a backing file that was not opened.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { GuestkitError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { drivers } from '../../src/formats/registry.js';
import type { Extent, ImageReader } from '../../src/formats/types.js';
import { optionsFor } from '../helpers/driver-options.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const MiB = 1024 * 1024;

const content = fc.record({
  size: fc.integer({ min: 1, max: (3 * MiB) / 512 }).map((s) => s * 512),
  runs: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 200_000 }), zero: fc.boolean() }), { maxLength: 6 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

/** Writes a sparse raw file and returns its bytes. */
function writeSparse(path: string, c: { size: number; runs: { at: number; length: number; zero: boolean }[]; seed: number }): Uint8Array {
  const bytes = new Uint8Array(c.size);
  const fd = openSync(path, 'w');
  try {
    for (const r of c.runs) {
      const offset = Math.floor(r.at * c.size);
      const length = Math.min(r.length, c.size - offset);
      if (length <= 0) continue;
      const data = r.zero ? new Uint8Array(length) : pseudoRandom(length, c.seed + offset);
      bytes.set(data, offset);
      writeSync(fd, data, 0, length, offset);
    }
    ftruncateSync(fd, c.size);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

async function extentsOf(r: ImageReader): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of r.extents()) out.push(e);
  return out;
}

/** The rule every reader keeps, given the bytes the image must read as. */
async function expectContract(r: ImageReader, want: Uint8Array, opts: { backingOpen: boolean }): Promise<void> {
  const all = await extentsOf(r);
  let at = 0;
  for (const e of all) {
    expect(e.offset, 'extents cover the disk in order, without gaps').toBe(at);
    expect(e.length).toBeGreaterThan(0);
    at += e.length;
    if (opts.backingOpen) expect(e.kind, `run at ${e.offset}: nothing is left to a backing file once the chain is open`).not.toBe('unallocated');
    if (e.kind === 'zero') {
      const got = await r.read(e.offset, e.length);
      expect(got.every((b) => b === 0), `'zero' run at ${e.offset}+${e.length} reads as zeros`).toBe(true);
    }
    if (e.kind !== 'data' && e.kind !== 'unallocated') {
      expect(want.subarray(e.offset, e.offset + e.length).every((b) => b === 0), `no data outside 'data' runs (${e.offset})`).toBe(true);
    }
  }
  expect(at).toBe(r.virtualSize);
}

const readable = drivers().filter((d) => d.capabilities.read && d.open);

describe('extents(): one rule for every driver', () => {
  const dir = workDir('extents-contract');
  let n = 0;

  it('every driver that reads can also make images to test its reader with', () => {
    // A reader without a writer would need a sample source here before it joins the registry.
    expect(readable.filter((d) => !(d.capabilities.write && d.create)).map((d) => d.name)).toEqual([]);
    expect(readable.map((d) => d.name)).toEqual(expect.arrayContaining(['raw', 'qcow2', 'vmdk', 'vhd', 'vdi']));
  });

  for (const driver of readable) {
    it(`${driver.name}: images without a backing file have no 'unallocated' runs, any content and options`, async () => {
      let checked = 0;
      await fc.assert(
        fc.asyncProperty(content, optionsFor(driver), async (c, options) => {
          const caseDir = join(dir, `c${n++}`);
          mkdirSync(caseDir);
          try {
            const src = join(caseDir, 'src.raw');
            const want = writeSparse(src, c);
            const out = join(caseDir, `out.${driver.extensions[0] ?? driver.name}`);
            try {
              await convert({ source: src, output: out, format: driver.name, options });
            } catch (e) {
              if (e instanceof GuestkitError) return; // an option set the writer refuses
              throw e;
            }
            const r = await openImage(out, { format: driver.name });
            try {
              // Formats may round the size up (VHD geometry): the tail reads as zeros.
              const padded = new Uint8Array(r.virtualSize);
              padded.set(want.subarray(0, Math.min(want.length, r.virtualSize)));
              await expectContract(r, padded, { backingOpen: true });
              checked++;
            } finally {
              await r.close();
            }
          } finally {
            rmSync(caseDir, { recursive: true, force: true });
          }
        }),
        { numRuns: 20 },
      );
      expect(checked).toBeGreaterThan(5);
    });
  }

  for (const driver of readable.filter((d) => d.capabilities.backing)) {
    it(`${driver.name}: an overlay resolves its holes through the backing file, and says 'unallocated' only when it is not opened`, async () => {
      await fc.assert(
        fc.asyncProperty(content, content, async (b, o) => {
          const caseDir = join(dir, `b${n++}`);
          mkdirSync(caseDir);
          try {
            const ext = driver.extensions[0] ?? driver.name;
            const baseRaw = join(caseDir, 'base.raw');
            writeSparse(baseRaw, b);
            const base = join(caseDir, `base.${ext}`);
            await convert({ source: baseRaw, output: base, format: driver.name });
            const topRaw = join(caseDir, 'top.raw');
            // The overlay is at least as large as the base, as qemu-img requires.
            const topBytes = writeSparse(topRaw, { ...o, size: Math.max(o.size, b.size) });
            const want = topBytes.slice();
            const top = join(caseDir, `top.${ext}`);
            await convert({ source: topRaw, output: top, format: driver.name, backingFile: `base.${ext}`, backingFormat: driver.name });
            const r = await openImage(top);
            try {
              await expectContract(r, want, { backingOpen: true });
            } finally {
              await r.close();
            }
            const alone = await openImage(top, { openBacking: false });
            try {
              const runs = await extentsOf(alone);
              expect(runs.reduce((at, e) => (e.offset === at ? at + e.length : -1), 0)).toBe(alone.virtualSize);
              // What the overlay leaves to its backing file is unknown without it: never claimed as zeros.
              expect(runs.filter((e) => e.kind === 'zero' && e.present === false)).toEqual([]);
            } finally {
              await alone.close();
            }
          } finally {
            rmSync(caseDir, { recursive: true, force: true });
          }
        }),
        { numRuns: 10 },
      );
    });
  }
});
