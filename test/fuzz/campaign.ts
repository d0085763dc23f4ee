/**
 * Long fuzzing campaigns: `npm run fuzz -- --runs 100000 [--driver qcow2|…|detect] [--seed N]`.
 * Per driver: arbitrary bytes behind its magic, and mutated images from our own writers in every
 * layout they produce. The `detect` target runs content detection on arbitrary bytes (behind any
 * format's magic) and on mutated real-world samples, then opens whatever it detected. Prints run
 * counts per target and saves any failing input to test/fuzz/regressions/, where the CI suite
 * replays it.
 */
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { drivers } from '../../src/formats/registry.js';
import type { FormatDriver } from '../../src/formats/types.js';
import { behindMagic, detectAndOpen, exercise, MAGIC, mutate, mutation, SEED_VARIANTS, seedImage, realWorldSamples, sparseContent } from './harness.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(opt('--runs') ?? 10000);
const only = opt('--driver');
const seed = opt('--seed') !== undefined ? Number(opt('--seed')) : Date.now() % 2 ** 31;
const OUT = new URL('./regressions/', import.meta.url).pathname;

function save(target: string, bytes: Uint8Array): string {
  mkdirSync(OUT, { recursive: true });
  const name = `${target}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.bin`;
  writeFileSync(`${OUT}${name}`, bytes);
  return name;
}

type Input = { bytes: Uint8Array; run: () => Promise<unknown> };
interface Target {
  name: string;
  properties: Array<[string, fc.Arbitrary<Input>]>;
}

function driverTarget(d: FormatDriver): Target {
  const properties: Target['properties'] = [
    ['arbitrary', fc.uint8Array({ maxLength: 16384 }).map((b) => behindMagic(d.name, b)).map((bytes) => ({ bytes, run: () => exercise(d, bytes) }))],
  ];
  if (d.create && d.capabilities.write) {
    const variants = SEED_VARIANTS[d.name]?.length ?? 1;
    properties.push([
      'mutated',
      fc.tuple(sparseContent, fc.nat(variants - 1), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([c, v, m]) => {
        let bytes: Uint8Array = new Uint8Array(0);
        return {
          get bytes() {
            return bytes;
          },
          run: async () => {
            bytes = mutate((await seedImage(d, c, v))!, m);
            await exercise(d, bytes);
          },
        };
      }),
    ]);
  }
  return { name: d.name, properties };
}

function detectTarget(): Target {
  const names = Object.keys(MAGIC);
  const samples = realWorldSamples();
  const properties: Target['properties'] = [
    [
      'arbitrary',
      fc.tuple(fc.constantFrom(...names), fc.uint8Array({ maxLength: 16384 })).map(([n, b]) => {
        const bytes = behindMagic(n, b);
        return { bytes, run: () => detectAndOpen(bytes) };
      }),
    ],
  ];
  if (samples.length) {
    properties.push([
      'samples-mutated',
      fc.tuple(fc.nat(samples.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([i, m]) => {
        const bytes = mutate(samples[i], m);
        return { bytes, run: () => detectAndOpen(bytes) };
      }),
    ]);
  }
  return { name: 'detect', properties };
}

async function main(): Promise<void> {
  let failed = 0;
  console.log(`fuzz: seed ${seed}, ${runs} runs per property`);
  const targets = [...drivers().filter((x) => x.open && x.capabilities.read).map(driverTarget), detectTarget()].filter((t) => !only || t.name === only);
  if (!targets.length) throw new Error(`no fuzz target named ${only}`);
  for (const t of targets) {
    const started = performance.now();
    for (const [label, arb] of t.properties) {
      // The last input that failed: after shrinking, the smallest one fast-check found.
      let lastInput: Uint8Array = new Uint8Array(0);
      const r = await fc.check(
        fc.asyncProperty(arb, async (input) => {
          try {
            await input.run();
          } catch (e) {
            lastInput = input.bytes;
            throw e;
          }
        }),
        { numRuns: runs, seed },
      );
      if (r.failed) {
        failed++;
        console.log(`fuzz: ${t.name} ${label}: FAILED after ${r.numRuns} runs: ${String(r.errorInstance)}; saved ${save(t.name, lastInput)}`);
      } else console.log(`fuzz: ${t.name} ${label}: ${r.numRuns} runs, no failure`);
    }
    console.log(`fuzz: ${t.name} took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  process.exit(failed ? 1 : 0);
}

main();
