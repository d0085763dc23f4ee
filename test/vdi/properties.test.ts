/**
 * Properties of the VDI reader and writer (fast-check):
 *  - any sparse content written as dynamic or static, to a file or a pipe, whatever the copy
 *    engine's chunking, reads back unchanged, and the image checks clean;
 *  - damaged headers and block maps only ever produce GuestkitErrors, never a crash, a hang or an
 *    allocation beyond a small bound, and check() never throws anything else either.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestkitError } from '../../src/errors.js';
import { checkVdiImage } from '../../src/formats/vdi/check.js';
import { vdiDriver } from '../../src/formats/vdi/driver.js';
import { readVdiImage } from '../../src/formats/vdi/image.js';
import { BufferSource } from '../../src/stream/source.js';
import { pseudoRandom } from '../helpers/work.js';
import { openVdiBytes } from '../vhd/direct.js';
import { expectOnlyGuestkitErrors, expectRoundTrip, region } from '../vhd/sparse-source.js';
import { buildVdi } from './build.js';

const MiB = 1024 * 1024;

describe('VDI round trip (property)', () => {
  it('reads back any sparse content it wrote, and checks clean', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          size: fc.integer({ min: 1, max: 4 * MiB }),
          regions: fc.array(region, { maxLength: 6 }),
          isStatic: fc.boolean(),
          pipe: fc.boolean(),
          chunk: fc.constantFrom(4096, 65536, MiB, 3 * MiB),
          zeroGranularity: fc.constantFrom(0, 512, 4096, 65536),
        }),
        async (p) => {
          const { image, reader: r } = await expectRoundTrip(vdiDriver, { ...p, options: { static: p.isStatic } }, openVdiBytes);
          expect(r.virtualSize).toBe(Math.ceil(p.size / 512) * 512);
          const check = await checkVdiImage(await readVdiImage(new BufferSource(image), 'out.vdi'), 'out.vdi');
          expect(check.corruptions).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });
});

const FIELDS = [0x44, 0x48, 0x4c, 0x154, 0x158, 0x168, 0x170, 0x174, 0x178, 0x17c, 0x180, 0x184, 0x1a8, 0x1b8];
const VALUES = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 511, 512, 513, 4096, 0x100000, 0x1fffff80, 0x20000000, 0x7fffffff, 0xfffffffe, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
type Mutation = { kind: 'byte'; at: number; value: number } | { kind: 'field'; at: number; value: number } | { kind: 'map'; entry: number; value: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat({ max: 2048 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('field' as const), at: fc.constantFrom(...FIELDS), value: VALUES }),
  fc.record({ kind: fc.constant('map' as const), entry: fc.nat({ max: 16 }), value: VALUES }),
);

describe('VDI hostile input (property)', () => {
  const seeds = [
    buildVdi({ diskSize: 8 * 4096 + 1000, blockSize: 4096, map: [{ slot: 1, data: pseudoRandom(4096, 1) }, 'zero', 'free', { slot: 0, data: pseudoRandom(4096, 2) }] }),
    buildVdi({ diskSize: 2 * MiB, type: 2, map: [{ slot: 0, data: pseudoRandom(MiB, 3) }, { slot: 1, data: new Uint8Array(MiB) }] }),
  ];

  it('damaged images only ever throw GuestkitError, and allocate little', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (which, mutations) => {
        const image = seeds[which].slice();
        const dv = new DataView(image.buffer);
        for (const m of mutations) {
          if (m.kind === 'byte') image[m.at] = m.value;
          else if (m.kind === 'field') dv.setUint32(m.at, m.value, true);
          else if (512 + m.entry * 4 + 4 <= image.length) dv.setUint32(512 + m.entry * 4, m.value, true);
        }
        const before = process.memoryUsage().arrayBuffers;
        try {
          checkVdiImage(await readVdiImage(new BufferSource(image), 'x.vdi'), 'x.vdi');
        } catch (e) {
          if (!(e instanceof GuestkitError)) throw e;
        }
        await expectOnlyGuestkitErrors(() => openVdiBytes(image));
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * MiB);
      }),
      { numRuns: 400 },
    );
  });
});
