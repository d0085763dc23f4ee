/**
 * measure's contract, for every writable driver of the registry and the options its schema
 * offers: `required` is at least the length of what our convert writes for that source and those
 * options (and of what create makes, with --size), and `fully-allocated` at least the length of a
 * fully written image — so a target sized from either never runs out of space. Option sets the
 * writer refuses must be refused by measure the same way.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { createImage } from '../../src/api/create.js';
import { measure } from '../../src/api/measure.js';
import { GuestkitError } from '../../src/errors.js';
import { drivers } from '../../src/formats/registry.js';
import { optionsFor } from '../helpers/driver-options.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const MiB = 1024 * 1024;

interface Run {
  offset: number;
  length: number;
  zero: boolean;
}

const source = fc.record({
  sectors: fc.integer({ min: 0, max: (6 * MiB) / 512 }),
  runs: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 300_000 }), zero: fc.boolean() }), { maxLength: 8 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

/** A sparse raw file: holes, with runs of random data and of written zeros. */
function writeSource(path: string, size: number, runs: Run[], seed: number): void {
  const fd = openSync(path, 'w');
  try {
    for (const r of runs) writeSync(fd, r.zero ? new Uint8Array(r.length) : pseudoRandom(r.length, seed + r.offset), 0, r.length, r.offset);
  } finally {
    closeSync(fd);
  }
  // Truncating after the writes keeps the last run inside the virtual size and sets holes at the end.
  const fd2 = openSync(path, 'r+');
  try {
    ftruncateSync(fd2, size);
  } finally {
    closeSync(fd2);
  }
}


/** The summed length of every file in a folder (split and flat VMDK write several). */
function lengthOf(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Runs `f`, returning its error when it is one of ours (a refusal), rethrowing anything else. */
async function refusal(f: () => Promise<unknown>): Promise<GuestkitError | undefined> {
  try {
    await f();
    return undefined;
  } catch (e) {
    if (e instanceof GuestkitError) return e;
    throw e;
  }
}

const writable = drivers().filter((d) => d.capabilities.write && d.create);

describe('measure: required and fully-allocated bound what convert and create write', () => {
  const dir = workDir('measure-contract');
  let n = 0;
  it('covers every writable driver of the registry', () => {
    expect(writable.map((d) => d.name)).toEqual(expect.arrayContaining(['raw', 'qcow2', 'vmdk', 'vhd', 'vdi']));
  });

  for (const driver of writable) {
    it(`-O ${driver.name}, random sparse sources and options`, async () => {
      let measured = 0;
      await fc.assert(
        fc.asyncProperty(source, optionsFor(driver), async ({ sectors, runs, seed }, options) => {
          const size = sectors * 512;
          const case_ = join(dir, `c${n++}`);
          mkdirSync(case_);
          try {
            const src = join(case_, 'src.raw');
            const placed = runs.map((r) => ({ offset: Math.floor((r.at * size) / 512) * 512, length: r.length, zero: r.zero })).filter((r) => r.offset < size);
            writeSource(src, size, placed, seed);
            const full = join(case_, 'full.raw');
            writeSource(full, size, size ? [{ offset: 0, length: size, zero: false }] : [], seed);

            let m: Awaited<ReturnType<typeof measure>> | undefined;
            const measureRefused = await refusal(async () => (m = await measure({ format: driver.name, options, source: src })));
            const out = (name: string) => {
              mkdirSync(join(case_, name));
              return join(case_, name, `out.${driver.extensions[0] ?? driver.name}`);
            };
            const convertRefused = await refusal(() => convert({ source: src, output: out('sparse'), format: driver.name, options }));
            expect(measureRefused?.constructor, `measure refused: ${measureRefused?.message}; convert refused: ${convertRefused?.message}`).toBe(convertRefused?.constructor);
            if (convertRefused || !m) return;
            measured++;
            expect(lengthOf(join(case_, 'sparse'))).toBeLessThanOrEqual(m.required);
            expect(m.required).toBeLessThanOrEqual(m['fully-allocated']);

            await convert({ source: full, output: out('full'), format: driver.name, options });
            expect(lengthOf(join(case_, 'full'))).toBeLessThanOrEqual(m['fully-allocated']);

            const empty = await measure({ format: driver.name, options, size });
            await createImage({ format: driver.name, path: out('create'), size, options });
            expect(lengthOf(join(case_, 'create'))).toBeLessThanOrEqual(empty.required);
            expect(lengthOf(join(case_, 'full'))).toBeLessThanOrEqual(empty['fully-allocated']);
          } finally {
            rmSync(case_, { recursive: true, force: true });
          }
        }),
        { numRuns: 30 },
      );
      // Refused option sets prove little: most runs must have measured something.
      expect(measured).toBeGreaterThan(10);
    });
  }
});
