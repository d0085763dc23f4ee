/**
 * Properties of the VHD reader and writer (fast-check):
 *  - any sparse content, written as fixed or dynamic (any block size, with or without force_size,
 *    to a file or a pipe, whatever the copy engine's chunking), reads back unchanged;
 *  - damaged headers, footers, BATs and bitmaps only ever produce GuestkitErrors, never a crash,
 *    a hang or an allocation beyond a small bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestkitError } from '../../src/errors.js';
import { vhdDriver } from '../../src/formats/vhd/driver.js';
import { pseudoRandom } from '../helpers/work.js';
import { buildFixed, buildVhd, refreshFooterChecksum, refreshHeaderChecksum } from './build.js';
import { openVhdBytes } from './direct.js';
import { expectOnlyGuestkitErrors, expectRoundTrip, region } from './sparse-source.js';

const MiB = 1024 * 1024;


describe('VHD round trip (property)', () => {
  it('reads back any sparse content it wrote', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          size: fc.integer({ min: 1, max: 3 * MiB }),
          regions: fc.array(region, { maxLength: 6 }),
          layout: fc.constantFrom<[string, Record<string, unknown>]>(
            ['dynamic 2M', {}],
            ['dynamic 4K', { block_size: 4096 }],
            ['dynamic 64K', { block_size: '64k' }],
            ['fixed', { subformat: 'fixed' }],
          ),
          force: fc.boolean(),
          pipe: fc.boolean(),
          chunk: fc.constantFrom(4096, 65536, MiB, 2 * MiB, 3 * MiB),
          zeroGranularity: fc.constantFrom(0, 512, 4096, 65536),
        }),
        async (p) => {
          const { reader: r } = await expectRoundTrip(vhdDriver, { ...p, options: { ...p.layout[1], force_size: p.force } }, openVhdBytes);
          if (p.force) expect(r.virtualSize).toBe(Math.ceil(p.size / 512) * 512);
        },
      ),
      { numRuns: 60 },
    );
  });
});

/** Small valid images of each kind to damage. */
function seeds(): Array<{ name: string; bytes: Uint8Array }> {
  const BS = 4096;
  const dyn = buildVhd({ type: 'dynamic', size: 16 * BS, blockSize: BS, blocks: [{ index: 0, data: pseudoRandom(BS, 1) }, { index: 7, data: pseudoRandom(BS, 2) }] });
  const diff = buildVhd({
    type: 'differencing',
    size: 16 * BS,
    blockSize: BS,
    blocks: [{ index: 3, data: pseudoRandom(BS, 3), present: (s) => s % 3 === 0 }],
    parent: { uuid: dyn.uuid, unicodeName: 'p.vhd', locators: [{ code: 'W2ru', data: new Uint8Array(Buffer.from('.\\p.vhd', 'utf16le')) }] },
  });
  return [
    { name: 'dynamic', bytes: dyn.bytes },
    { name: 'differencing', bytes: diff.bytes },
    { name: 'fixed', bytes: buildFixed(pseudoRandom(34816, 4)) },
  ];
}

/** Field offsets worth aiming at: footer sizes/CHS/type/data offset, header table offset/entries/block size, first BAT entries, locator fields. */
const FOOTER_FIELDS = [16, 20, 40, 44, 48, 52, 56, 58, 59, 60];
const HEADER_FIELDS = [16, 20, 28, 32, 576, 580, 584, 592, 596];
const VALUES = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 511, 512, 513, 4096, 0x200000, 0x40000001, 0x1fffffff, 0x7fffffff, 0xfffffffe, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);

type Mutation = { kind: 'byte'; at: number; value: number } | { kind: 'footer'; field: number; value: number } | { kind: 'header'; field: number; value: number } | { kind: 'bat'; entry: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat({ max: 8192 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('footer' as const), field: fc.constantFrom(...FOOTER_FIELDS), value: VALUES }),
  fc.record({ kind: fc.constant('header' as const), field: fc.constantFrom(...HEADER_FIELDS), value: VALUES }),
  fc.record({ kind: fc.constant('bat' as const), entry: fc.nat({ max: 20 }), value: VALUES }),
);

function apply(image: Uint8Array, m: Mutation, fixChecksums: boolean): void {
  const dv = new DataView(image.buffer, image.byteOffset, image.length);
  const footerAt = image.length - 512;
  const isDynamic = image[0] === 0x63; // "conectix" at 0
  switch (m.kind) {
    case 'byte':
      if (m.at < image.length) image[m.at] = m.value;
      break;
    case 'footer':
      if (m.field >= 58) image[footerAt + m.field] = m.value & 0xff;
      else dv.setUint32(footerAt + m.field, m.value);
      if (isDynamic) image.copyWithin(0, footerAt, footerAt + 512);
      break;
    case 'header':
      if (isDynamic) dv.setUint32(512 + m.field, m.value);
      break;
    case 'bat': {
      const tableOffset = isDynamic ? Number(dv.getBigUint64(512 + 16)) : -1;
      if (tableOffset >= 0 && tableOffset + m.entry * 4 + 4 <= image.length) dv.setUint32(tableOffset + m.entry * 4, m.value);
      break;
    }
  }
  if (fixChecksums) {
    refreshFooterChecksum(image, footerAt);
    if (isDynamic) {
      refreshFooterChecksum(image, 0);
      refreshHeaderChecksum(image, 512);
    }
  }
}

describe('VHD hostile input (property)', () => {
  const base = seeds();

  it('damaged images only ever throw GuestkitError, and allocate little', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: base.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (which, mutations, fix) => {
        const image = base[which].bytes.slice();
        for (const m of mutations) apply(image, m, fix);
        const before = process.memoryUsage().arrayBuffers;
        await expectOnlyGuestkitErrors(() => openVhdBytes(image, { openBacking: false }));
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * MiB);
      }),
      { numRuns: 400 },
    );
  });
});
