/**
 * Long fuzzing campaigns: `npm run fuzz -- --runs 100000 [--driver qcow2] [--seed N]`.
 * Runs, per driver, arbitrary bytes behind its magic and mutated images from our own writers;
 * prints run counts per driver and saves any failing input to test/fuzz/regressions/, where the
 * CI suite replays it.
 */
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { drivers } from '../../src/formats/registry.js';
import { exercise, mutate, mutation, seedImage, sparseContent } from './harness.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(opt('--runs') ?? 10000);
const only = opt('--driver');
const seed = opt('--seed') !== undefined ? Number(opt('--seed')) : Date.now() % 2 ** 31;
const OUT = new URL('./regressions/', import.meta.url).pathname;

function save(driver: string, bytes: Uint8Array): string {
  mkdirSync(OUT, { recursive: true });
  const name = `${driver}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.bin`;
  writeFileSync(`${OUT}${name}`, bytes);
  return name;
}

async function main(): Promise<void> {
  let failed = 0;
  console.log(`fuzz: seed ${seed}, ${runs} runs per property`);
  for (const d of drivers().filter((x) => x.open && x.capabilities.read && (!only || x.name === only))) {
    const started = performance.now();
    // The last input that failed: after shrinking, the smallest one fast-check found.
    let lastInput: Uint8Array = new Uint8Array(0);
    const failing = async (bytes: Uint8Array, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (e) {
        lastInput = bytes;
        throw e;
      }
    };
    const arbitrary = await fc.check(
      fc.asyncProperty(fc.uint8Array({ maxLength: 16384 }), (b) => failing(b, () => exercise(d, b))),
      { numRuns: runs, seed },
    );
    let mutated: { failed: boolean; numRuns: number; errorInstance?: unknown; error?: unknown } | undefined;
    if (d.create && d.capabilities.write) {
      mutated = await fc.check(
        fc.asyncProperty(sparseContent, fc.array(mutation, { minLength: 1, maxLength: 4 }), async (c, m) => {
          const img = mutate((await seedImage(d, c))!, m);
          await failing(img, () => exercise(d, img));
        }),
        { numRuns: runs, seed },
      );
    }
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const results: Array<[string, { failed: boolean; numRuns: number; errorInstance?: unknown; error?: unknown } | undefined]> = [
      ['arbitrary', arbitrary],
      ['mutated', mutated],
    ];
    for (const [label, r] of results) {
      if (!r) continue;
      if (r.failed) {
        failed++;
        console.log(`fuzz: ${d.name} ${label}: FAILED after ${r.numRuns} runs: ${String(r.errorInstance ?? r.error)}; saved ${save(d.name, lastInput)}`);
      } else console.log(`fuzz: ${d.name} ${label}: ${r.numRuns} runs, no failure`);
    }
    console.log(`fuzz: ${d.name} took ${secs} s`);
  }
  process.exit(failed ? 1 : 0);
}

main();
