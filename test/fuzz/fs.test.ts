/**
 * CI's fixed-seed fuzzing of the filesystem readers; `npx tsx test/fuzz/fs-campaign.ts --runs 100000`
 * runs the same properties for longer.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferView } from '../../src/guest/view.js';
import { applyFsPatch, exerciseFs, fsPatchArb, fsSeeds, type FsSeed } from './fs-harness.js';

const SEED = 20261208;
const RUNS = Number(process.env.GUESTKIT_FUZZ_RUNS ?? 60);

describe('fuzzing the filesystem readers', () => {
  let seeds: FsSeed[];
  beforeAll(async () => {
    seeds = await fsSeeds();
  }, 60_000);
  afterAll(async () => {
    for (const s of seeds ?? []) await s.close();
  });

  it('ext and FAT fixtures with metadata mutated: a result or a GuestkitError', async () => {
    for (const s of seeds) expect((await exerciseFs(s.view)).ok, s.name).toBe(true);
    await fc.assert(
      fc.asyncProperty(fsPatchArb(seeds), async (p) => {
        const { view, type } = applyFsPatch(seeds, p);
        await exerciseFs(view, type);
      }),
      { numRuns: RUNS * 4, seed: SEED },
    );
  }, 120_000);

  it('arbitrary bytes behind an ext superblock magic and a FAT boot sector', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 4096, maxLength: 65536 }), fc.constantFrom('ext4', 'vfat'), async (b, type) => {
        const bytes = b.slice();
        if (type === 'ext4') {
          bytes[0x438] = 0x53;
          bytes[0x439] = 0xef;
        } else {
          bytes[11] = 0;
          bytes[12] = 2; // 512-byte sectors, so parsing goes past the first check
        }
        await exerciseFs(new BufferView(bytes, 'fuzz.img'), type);
      }),
      { numRuns: RUNS * 2, seed: SEED },
    );
  });
});
