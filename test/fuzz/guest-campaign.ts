/**
 * Long fuzzing of the guest wing: `npx tsx test/fuzz/guest-campaign.ts --runs 100000 [--seed N]
 * [--target disk|probes|lvm-text]`. The same properties as test/fuzz/guest.test.ts, for longer;
 * prints runs per target and exits non-zero with the counterexample on a failure.
 */
import fc from 'fast-check';
import { BufferView } from '../../src/guest/view.js';
import { readMetadataText, readPvLabel } from '../../src/guest/volumes/lvm2/label.js';
import { applyPatch, exerciseDisk, exerciseLvmText, exerciseProbes, guestSeeds, mutateText, patchArb, textMutation } from './guest-harness.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(opt('--runs') ?? 10000);
const only = opt('--target');
const seed = opt('--seed') !== undefined ? Number(opt('--seed')) : Date.now() % 2 ** 31;
const DISKS = ['mbr', 'gpt', 'gpt-hybrid', 'gpt4k', 'lvm-a', 'lvm-b', 'fs-ext4', 'fs-fat32', 'fs-fat12', 'fs-ntfs', 'fs-exfat', 'fs-iso', 'fs-swap', 'fs-luks2', 'fs-btrfs', 'fs-xfs', 'fs-udf'];

const seeds = await guestSeeds(DISKS);
const targets: Record<string, () => Promise<void>> = {
  disk: () => fc.assert(fc.asyncProperty(patchArb(seeds), async (p) => void (await exerciseDisk(applyPatch(seeds, p)))), { numRuns: runs, seed }),
  probes: () =>
    fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 200 * 1024 }), async (b) => void (await exerciseProbes(new BufferView(b)))),
      { numRuns: runs, seed },
    ),
  'lvm-text': async () => {
    const v = seeds.find((s) => s.name === 'lvm-b')!.view;
    const text = (await readMetadataText(v, (await readPvLabel(v))!.metadataAreas[0])) as string;
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 4000 }), fc.array(textMutation, { minLength: 1, maxLength: 8 }), async (s, m) => {
        await exerciseLvmText(s);
        await exerciseLvmText(mutateText(text, m));
      }),
      { numRuns: runs, seed },
    );
  },
};
for (const [name, run] of Object.entries(targets)) {
  if (only && only !== name) continue;
  const t0 = Date.now();
  await run();
  console.log(`${name}: ${runs} runs, seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s, no failure`);
}
process.exit(0);
