/**
 * CI's fixed-seed fuzzing of every driver: arbitrary bytes behind each magic, and valid images
 * from our own writers with their metadata mutated. `npm run fuzz` runs the same properties for
 * longer (test/fuzz/campaign.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { drivers, byName } from '../../src/formats/registry.js';
import { behindMagic, detectAndOpen, exercise, exerciseSource, hugeSource, mutate, mutation, resealVhd, SEED_VARIANTS, seedImage, realWorldSamples, sparseContent, TABLE_FIELDS } from './harness.js';

const SEED = 20261125;
const RUNS = Number(process.env.GUESTKIT_FUZZ_RUNS ?? 60);
const REGRESSIONS = new URL('./regressions/', import.meta.url).pathname;

describe('fuzzing every reader', () => {
  for (const d of drivers().filter((x) => x.open && x.capabilities.read)) {
    it(`${d.name}: arbitrary bytes behind its magic never escape as anything but a GuestkitError`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 16384 }), async (body) => {
          await exercise(d, behindMagic(d.name, body));
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });

    it.runIf(Boolean(d.create && d.capabilities.write))(`${d.name}: images from our writer, mutated, never escape as anything but a GuestkitError`, async () => {
      await fc.assert(
        fc.asyncProperty(sparseContent, fc.nat((SEED_VARIANTS[d.name]?.length ?? 1) - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (content, variant, muts) => {
          const seed = await seedImage(d, content, variant);
          expect(seed).toBeDefined();
          const clean = await exercise(d, seed!);
          expect(clean.ok, String(clean.error)).toBe(true);
          await exercise(d, mutate(seed!, muts));
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });
  }

  // Table sizes bounded only by the file's size: the image's head in a sparse source of up to 4 GiB
  // (holes behind it), its table fields set to large values. Open, map, read and check must stay
  // within the time and allocation limits, whatever table the header states.
  for (const name of Object.keys(TABLE_FIELDS)) {
    it(`${name}: huge tables stated by the header, in a sparse file, stay bounded in time and memory`, async () => {
      const d = byName(name);
      const fields = TABLE_FIELDS[name];
      // Per field: a large value, or the writer's own (undefined).
      const values = fc.tuple(...fields.map((f) => fc.option(fc.constantFrom(...f.values), { nil: undefined, freq: 4 })));
      await fc.assert(
        fc.asyncProperty(sparseContent, values, fc.constantFrom(2 ** 26, 2 ** 30, 2 ** 32), async (content, chosen, size) => {
          const head = (await seedImage(d, content))!.slice();
          const dv = new DataView(head.buffer);
          fields.forEach((f, k) => {
            if (chosen[k] !== undefined && f.at + 4 <= head.length) dv.setUint32(f.at, chosen[k]!, !f.be);
          });
          if (name === 'vhd') resealVhd(head);
          await exerciseSource(d, hugeSource(name, head, Math.max(size, head.length + 512)), 0, true);
        }),
        { numRuns: Math.max(10, RUNS / 2), seed: SEED },
      );
    });
  }

  it('real-world samples, mutated, never escape as anything but a GuestkitError', async () => {
    const samples = realWorldSamples();
    await fc.assert(
      fc.asyncProperty(fc.nat(samples.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (i, muts) => {
        await detectAndOpen(mutate(samples[i], muts));
      }),
      { numRuns: RUNS * 2, seed: SEED },
    );
  });

  // Failing inputs saved by `npm run fuzz` stay here as regression cases, one test each; the
  // name's prefix is the campaign target (a driver, or `detect`).
  const saved = existsSync(REGRESSIONS) ? readdirSync(REGRESSIONS).filter((f) => f.endsWith('.bin')) : [];
  for (const f of saved) {
    it(`regression case ${f}`, async () => {
      const bytes = new Uint8Array(readFileSync(join(REGRESSIONS, f)));
      const target = f.split('-')[0];
      await expect(target === 'detect' ? detectAndOpen(bytes) : exercise(byName(target), bytes)).resolves.toBeDefined();
    });
  }
});
