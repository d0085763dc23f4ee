/**
 * VDI headers and block maps built by hand: block sizes other than 1 MiB, block extra areas, free
 * and zero blocks, blocks stored out of order; every refusal a typed error naming the field; and
 * check() counting what qemu-img check counts.
 */
import { describe, expect, it } from 'vitest';
import { CorruptImageError, LimitExceededError, TruncatedImageError, UnsupportedFeatureError } from '../../src/errors.js';
import { checkVdiImage } from '../../src/formats/vdi/check.js';
import { readVdiImage } from '../../src/formats/vdi/image.js';
import { BufferSource } from '../../src/stream/source.js';
import { pseudoRandom } from '../helpers/work.js';
import { openVdiBytes } from '../vhd/direct.js';
import { buildVdi, expectedVdi, type VdiSpec } from './build.js';

const KiB = 1024;

async function readBack(spec: VdiSpec): Promise<{ data: Uint8Array; info: ReturnType<Awaited<ReturnType<typeof openVdiBytes>>['info']> }> {
  const r = await openVdiBytes(buildVdi(spec));
  const data = await r.read(0, r.virtualSize);
  const info = r.info();
  await r.close();
  return { data, info };
}

async function refusal(spec: VdiSpec | Uint8Array): Promise<Error & { field?: string; offset?: number }> {
  try {
    const r = await openVdiBytes(spec instanceof Uint8Array ? spec : buildVdi(spec));
    await r.read(0, r.virtualSize);
    await r.close();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a refusal');
}

describe('VDI block maps', () => {
  it('reads free, zero and allocated blocks stored out of order, with 64 KiB blocks', async () => {
    const spec: VdiSpec = {
      diskSize: 6 * 64 * KiB - 1000, // odd: rounded up to a sector, as qemu does
      blockSize: 64 * KiB,
      map: [{ slot: 2, data: pseudoRandom(64 * KiB, 1) }, 'free', 'zero', { slot: 0, data: pseudoRandom(64 * KiB, 2) }, 'free', { slot: 1, data: pseudoRandom(64 * KiB, 3) }],
    };
    const { data, info } = await readBack(spec);
    expect(data.length).toBe(Math.ceil(spec.diskSize / 512) * 512);
    expect(Buffer.from(data).equals(Buffer.from(expectedVdi(spec)))).toBe(true);
    expect(info.clusterSize).toBe(64 * KiB);
    expect(info.formatSpecific!['blocks-zero']).toBe(1);
    expect(info.warnings).toBeUndefined();
  });

  it('honours a block extra area in front of each block (VDICore.h cbBlockExtra)', async () => {
    const spec: VdiSpec = { diskSize: 3 * 4096, blockSize: 4096, blockExtra: 512, map: ['zero', { slot: 1, data: pseudoRandom(4096, 5) }, { slot: 0, data: pseudoRandom(4096, 6) }] };
    const { data } = await readBack(spec);
    expect(Buffer.from(data).equals(Buffer.from(expectedVdi(spec)))).toBe(true);
  });

  it('maps zero and free blocks as zeros and allocated ones at their file offset', async () => {
    const spec: VdiSpec = { diskSize: 3 * 4096, blockSize: 4096, map: ['free', { slot: 0, data: pseudoRandom(4096, 7) }, 'zero'] };
    const r = await openVdiBytes(buildVdi(spec));
    const extents = [];
    for await (const e of r.extents()) extents.push([e.offset, e.length, e.kind, e.hostOffset]);
    expect(extents).toEqual([
      [0, 4096, 'zero', undefined],
      [4096, 4096, 'data', 1024],
      [8192, 4096, 'zero', undefined],
    ]);
  });

  it('shows the UUIDs in GUID order, the LCHS geometry and the pre-header text', async () => {
    const uuid = new Uint8Array([0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 1, 2, 3, 4, 5, 6, 7, 8]);
    const { info } = await readBack({ diskSize: 4096, blockSize: 4096, uuidImage: uuid, lchs: [10, 16, 63, 512] });
    const fs = info.formatSpecific!;
    expect(fs['image-uuid']).toBe('12345678-9abc-def0-0102-030405060708');
    expect(fs['link-uuid']).toBe('00000000-0000-0000-0000-000000000000');
    expect(fs['lchs-geometry']).toEqual({ cylinders: 10, heads: 16, sectors: 63, 'sector-size': 512 });
    expect(fs['file-info']).toBe('<<< Oracle VM VirtualBox Disk Image >>>');
    expect(fs['header-version']).toBe('1.1');
  });

  it('warns about an unusual pre-header text, a short header and a wrong allocated count', async () => {
    const { info } = await readBack({ diskSize: 4096, blockSize: 4096, text: 'hello', headerSize: 0x100, blocksAllocated: 3 });
    const w = info.warnings!.join('\n');
    expect(w).toMatch(/pre-header text "hello"/);
    expect(w).toMatch(/header size 0x100/);
    expect(w).toMatch(/counts 3 allocated blocks but the block map has 0/);
  });
});

describe('VDI refusals are typed and name the field', () => {
  const base: VdiSpec = { diskSize: 4 * 4096, blockSize: 4096, map: [{ slot: 0, data: pseudoRandom(4096, 1) }] };
  const cases: Array<[string, VdiSpec | (() => Uint8Array), new (...a: never[]) => Error, string, number?]> = [
    ['signature', () => ((b) => ((b[0x40] = 0), b))(buildVdi(base)), CorruptImageError, 'signature', 0x40],
    ['header version 1.0', { ...base, version: 0x00010000 }, UnsupportedFeatureError, 'version', 0x44],
    ['header version 0', { ...base, version: 0 }, UnsupportedFeatureError, 'version', 0x44],
    ['differencing image type', { ...base, type: 4 }, UnsupportedFeatureError, 'imageType', 0x4c],
    ['unknown image type', { ...base, type: 9 }, UnsupportedFeatureError, 'imageType', 0x4c],
    ['link UUID (a snapshot)', { ...base, uuidLinkage: new Uint8Array(16).fill(1) }, UnsupportedFeatureError, 'uuidLinkage', 0x1a8],
    ['block size not a power of two', { ...base, blockSize: 3000, map: [] }, CorruptImageError, 'blockSize', 0x178],
    ['block extra not a power of two', { ...base, blockExtra: 100 }, CorruptImageError, 'blockExtra', 0x17c],
    ['too many blocks', { ...base, blocksInImage: 0x20000000, map: [] }, LimitExceededError, 'blocksInImage', 0x180],
    ['disk larger than its blocks', { ...base, blocksInImage: 2, map: [] }, CorruptImageError, 'diskSize', 0x170],
    ['block map past the end of the file', () => buildVdi({ ...base, blocksInImage: 4000, diskSize: 4000 * 4096, map: [] }).slice(0, 4096), TruncatedImageError, 'offBlocks', 0x154],
    ['a block index beyond the image, found when read', { ...base, map: [{ raw: 7 }] }, CorruptImageError, 'block map', 512],
    ['a block whose data lies past the end of the file', { ...base, map: ['free', { raw: 3 }] }, TruncatedImageError, 'block map', 516],
    ['a file too small for the header', () => new Uint8Array(300), TruncatedImageError, 'header', 0],
  ];
  for (const [name, spec, type, field, offset] of cases) {
    it(name, async () => {
      const e = await refusal(typeof spec === 'function' ? spec() : spec);
      expect(e).toBeInstanceOf(type);
      expect(e.field).toBe(field);
      if (offset !== undefined) expect(e.offset).toBe(offset);
      expect(e.message).toContain('image.vdi');
    });
  }
});

describe('VDI check (qemu-img check semantics)', () => {
  const check = async (spec: VdiSpec) => checkVdiImage(await readVdiImage(new BufferSource(buildVdi(spec), 'c.vdi'), 'c.vdi'), 'c.vdi');
  const d = (n: number) => ({ slot: n, data: new Uint8Array(4096) });

  it('finds nothing wrong in a consistent map', async () => {
    const r = await check({ diskSize: 4 * 4096, blockSize: 4096, map: [d(1), 'zero', d(0), 'free'] });
    expect(r).toMatchObject({ corruptions: 0, leaks: 0, checkErrors: 0, messages: [], format: 'vdi' });
  });

  it('counts duplicate indices, indices beyond the image and a wrong allocated count', async () => {
    const r = await check({ diskSize: 4 * 4096, blockSize: 4096, map: [d(1), d(1), { raw: 9 }, d(0)], blocksAllocated: 4 });
    expect(r.corruptions).toBe(3);
    expect(r.messages).toEqual([
      'ERROR: block index 1 also used by 1 (first used by 0)',
      'ERROR: block index 2 too large, is 9',
      'ERROR: allocated blocks mismatch, is 3, should be 4',
    ]);
  });
});
