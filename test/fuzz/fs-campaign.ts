/**
 * Long fuzzing of the filesystem readers: `npx tsx test/fuzz/fs-campaign.ts --runs 100000 [--seed N]`.
 * The property of test/fuzz/fs.test.ts, for longer; exits non-zero with the counterexample on a failure.
 */
import fc from 'fast-check';
import { applyFsPatch, exerciseFs, fsPatchArb, fsSeeds } from './fs-harness.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(opt('--runs') ?? 10000);
const seed = opt('--seed') !== undefined ? Number(opt('--seed')) : Date.now() % 2 ** 31;
const seeds = await fsSeeds();
const t0 = Date.now();
await fc.assert(fc.asyncProperty(fsPatchArb(seeds), async (p) => {
  const { view, type } = applyFsPatch(seeds, p);
  await exerciseFs(view, type);
}), { numRuns: runs, seed });
console.log(`filesystems: ${runs} runs, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s, no failure`);
process.exit(0);
