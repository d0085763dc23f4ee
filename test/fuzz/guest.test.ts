/**
 * CI's fixed-seed fuzzing of the guest wing (partition tables, probes, LVM label/metadata/text);
 * `npm run fuzz -- --driver guest` runs the same properties for longer (test/fuzz/campaign.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BufferView } from '../../src/guest/view.js';
import { readMetadataText, readPvLabel } from '../../src/guest/volumes/lvm2/label.js';
import { applyPatch, exerciseDisk, exerciseLvmText, exerciseProbes, guestSeeds, mutateText, patchArb, textMutation, type Seed } from './guest-harness.js';

const SEED = 20261208;
const RUNS = Number(process.env.GUESTKIT_FUZZ_RUNS ?? 60);
const DISKS = ['mbr', 'gpt', 'gpt-hybrid', 'gpt4k', 'lvm-a', 'lvm-b', 'fs-ext4', 'fs-fat32', 'fs-ntfs', 'fs-exfat', 'fs-iso', 'fs-swap', 'fs-luks2', 'fs-btrfs', 'fs-xfs'];

/** Where each probe looks for its magic: arbitrary bytes around it exercise everything after the magic check. */
const MAGICS: [number, number[]][] = [
  [0x438, [0x53, 0xef]],
  [0, Array.from('XFSB', (c) => c.charCodeAt(0))],
  [0x10040, Array.from('_BHRfS_M', (c) => c.charCodeAt(0))],
  [3, Array.from('EXFAT   ', (c) => c.charCodeAt(0))],
  [3, Array.from('NTFS    ', (c) => c.charCodeAt(0))],
  [0x36, Array.from('FAT16   ', (c) => c.charCodeAt(0))],
  [4086, Array.from('SWAPSPACE2', (c) => c.charCodeAt(0))],
  [0x8001, Array.from('CD001', (c) => c.charCodeAt(0))],
  [0, Array.from('LABELONE', (c) => c.charCodeAt(0))],
  [0, [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 2]],
  [4096, [0xfc, 0x4e, 0x2b, 0xa9, 1, 0, 0, 0]],
];

describe('fuzzing the guest wing', () => {
  let seeds: Seed[];
  beforeAll(async () => {
    seeds = await guestSeeds(DISKS);
  });
  afterAll(async () => {
    for (const s of seeds ?? []) await (s.view as unknown as { reader: { close(): Promise<void> } }).reader.close();
  });

  it('fixture disks, metadata mutated: tables, probes and LVM give a result or a GuestkitError', async () => {
    for (const s of seeds) expect((await exerciseDisk(s.view)).ok, s.name).toBe(true);
    await fc.assert(
      fc.asyncProperty(patchArb(seeds), async (p) => {
        await exerciseDisk(applyPatch(seeds, p));
      }),
      { numRuns: RUNS * 4, seed: SEED },
    );
  });

  it('arbitrary bytes behind each probe magic', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(MAGICS.length - 1), fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat(), async (m, noise, where) => {
        const size = 80 * 1024 + (where % (64 * 1024));
        const b = new Uint8Array(size);
        const [at, magic] = MAGICS[m];
        const start = Math.max(0, at - (where % 2048));
        b.set(noise.subarray(0, Math.max(0, size - start)), start);
        if (at + magic.length <= size) b.set(magic, at);
        await exerciseProbes(new BufferView(b));
        await exerciseDisk(new BufferView(b));
      }),
      { numRuns: RUNS * 2, seed: SEED },
    );
  });

  it('LVM metadata text: arbitrary and mutated', async () => {
    const lvmB = seeds.find((s) => s.name === 'lvm-b')!;
    const label = (await readPvLabel(lvmB.view))!;
    const text = (await readMetadataText(lvmB.view, label.metadataAreas[0])) as string;
    expect(typeof text).toBe('string');
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 2000 }), fc.array(textMutation, { minLength: 1, maxLength: 6 }), async (s, muts) => {
        await exerciseLvmText(s);
        await exerciseLvmText(mutateText(text, muts));
      }),
      { numRuns: RUNS * 2, seed: SEED },
    );
  });
});
