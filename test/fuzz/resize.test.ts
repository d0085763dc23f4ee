/**
 * Resize writes into the image it is given, so it gets the same hostile-input property as the
 * readers: a mutated image (from our own writers, every layout) either grows and then still opens
 * as an image of the new size, or the resize throws a GuestkitError — never a TypeError, a hang or
 * a huge allocation. Both outcomes are checked by re-opening the file.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GuestkitError } from '../../src/errors.js';
import { rootContext } from '../../src/formats/open.js';
import { drivers } from '../../src/formats/registry.js';
import { FileSource } from '../../src/stream/source.js';
import { workDir } from '../helpers/work.js';
import { CASE_TIME_LIMIT_MS, exercise, mutate, mutation, SEED_VARIANTS, seedImage, sparseContent, withTimeout } from './harness.js';

const SEED = Number(process.env.GUESTKIT_FUZZ_SEED ?? 20261126);
const RUNS = Number(process.env.GUESTKIT_FUZZ_RUNS ?? 60);

describe('fuzzing resize', () => {
  const dir = workDir('fuzz-resize');
  for (const d of drivers().filter((x) => x.resize && x.create && x.open)) {
    it(`${d.name}: growing a mutated image succeeds (and it then reads at the new size) or throws a GuestkitError`, async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          sparseContent,
          fc.nat((SEED_VARIANTS[d.name]?.length ?? 1) - 1),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          fc.integer({ min: 1, max: 4 << 20 }),
          async (content, variant, muts, grow) => {
            const path = join(dir, `case-${n++}.${d.extensions[0]}`);
            const mutated = mutate((await seedImage(d, content, variant))!, muts);
            writeFileSync(path, mutated);
            const before = await exercise(d, mutated);
            const ctx = rootContext(path, path, { openBacking: false });
            let newSize: number | undefined;
            try {
              newSize = (await withTimeout(d.resize!(path, { delta: grow }, { shrink: false, ctx }), CASE_TIME_LIMIT_MS, `resize of ${path}`)).newSize;
            } catch (e) {
              if (!(e instanceof GuestkitError)) throw e;
            }
            // Whatever happened, the file is still only ever refused with a GuestkitError.
            const after = await exercise(d, new Uint8Array(readFileSync(path)));
            if (newSize !== undefined && before.ok) {
              // A resize that reported success on an image that read cleanly leaves one that reads
              // cleanly, at the new size.
              expect(after.ok, String(after.error)).toBe(true);
              const r = await d.open!(await FileSource.open(path), ctx);
              expect(r.virtualSize).toBe(newSize);
              await r.close();
            }
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
    }, 120_000);
  }
});
