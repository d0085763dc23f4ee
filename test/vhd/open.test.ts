/**
 * Opening VHDs: which footer is used, and a typed error naming field and offset for every header
 * problem. Images are built by hand (build.ts) and then damaged on purpose.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CorruptImageError, LimitExceededError, TruncatedImageError, UnsupportedFeatureError } from '../../src/errors.js';
import { vhdDriver } from '../../src/formats/vhd/driver.js';
import { StreamSource } from '../../src/stream/source.js';
import { pseudoRandom } from '../helpers/work.js';
import { buildFixed, buildVhd, refreshFooterChecksum, refreshHeaderChecksum, type BuildSpec } from './build.js';
import { openVhdBytes } from './direct.js';

const BS = 32 * 1024;
const spec: BuildSpec = { type: 'dynamic', size: 5 * BS, blockSize: BS, blocks: [{ index: 1, data: pseudoRandom(BS, 3) }, { index: 4, data: pseudoRandom(BS, 4) }] };
const good = () => buildVhd(spec).bytes;
const expected = () => {
  const d = new Uint8Array(5 * BS);
  d.set(pseudoRandom(BS, 3), BS);
  d.set(pseudoRandom(BS, 4), 4 * BS);
  return d;
};
const setU32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v);

async function openError(bytes: Uint8Array): Promise<Error & { field?: string; offset?: number }> {
  try {
    const r = await openVhdBytes(bytes, { openBacking: false });
    await r.close();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the image to be refused');
}

describe('VHD footer selection', () => {
  it('reads a clean image without warnings', async () => {
    const r = await openVhdBytes(good());
    expect(Buffer.from(await r.read(0, r.virtualSize)).equals(Buffer.from(expected()))).toBe(true);
    expect(r.info().warnings).toBeUndefined();
    expect(r.info().formatSpecific!['footer-offset']).toBe(good().length - 512);
  });

  it('falls back to the copy at offset 0 when the end footer is damaged, and says so', async () => {
    const img = good();
    img[img.length - 512 + 100] ^= 0xff; // reserved byte: the checksum no longer matches
    const r = await openVhdBytes(img);
    expect(Buffer.from(await r.read(0, r.virtualSize)).equals(Buffer.from(expected()))).toBe(true);
    const info = r.info();
    expect(info.warnings?.join()).toMatch(/footer at the end of the file has a wrong checksum.*using the copy at offset 0/);
    expect(info.formatSpecific!['footer-offset']).toBe(0);
  });

  it('falls back to the copy when the end of the file is not a footer (interrupted block allocation)', async () => {
    const img = good();
    const longer = new Uint8Array(img.length + BS);
    longer.set(img);
    longer.set(pseudoRandom(BS, 9), img.length); // data where a new footer should have been written
    const r = await openVhdBytes(longer);
    expect(Buffer.from(await r.read(0, r.virtualSize)).equals(Buffer.from(expected()))).toBe(true);
    expect(r.info().warnings?.join()).toMatch(/has no "conectix" cookie; using the copy at offset 0/);
  });

  it('uses the end footer when the copy at offset 0 is damaged or different, with a warning', async () => {
    const damaged = good();
    damaged[100] ^= 1;
    expect((await openVhdBytes(damaged)).info().warnings?.join()).toMatch(/copy at offset 0 has a wrong checksum/);
    const different = good();
    setU32(different, 24, 12345);
    refreshFooterChecksum(different, 0);
    expect((await openVhdBytes(different)).info().warnings?.join()).toMatch(/differs from the footer at the end/);
  });

  it('refuses an image whose footers are both damaged, naming the checksum field', async () => {
    const img = good();
    img[100] ^= 1;
    img[img.length - 512 + 100] ^= 1;
    const e = await openError(img);
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e.field).toBe('checksum');
    expect(e.offset).toBe(img.length - 512 + 64);
  });

  it('reads a fixed disk with the 511-byte footer of Virtual PC before 2004', async () => {
    const data = pseudoRandom(34816, 5);
    const r = await openVhdBytes(buildFixed(data, { shortFooter: true }));
    expect(r.virtualSize).toBe(34816);
    expect(Buffer.from(await r.read(0, r.virtualSize)).equals(Buffer.from(data))).toBe(true);
    expect(r.info().subformat).toBe('fixed');
  });

  it('refuses a pipe, which cannot reach the footer', async () => {
    const s = new PassThrough();
    s.end(Buffer.from(good()));
    const ctx = { file: '<stdin>', allowOutside: false, openBacking: true, depth: 0, chain: [], openImage: () => Promise.reject(new Error('no')) };
    await expect(vhdDriver.open!(new StreamSource(s), ctx)).rejects.toBeInstanceOf(UnsupportedFeatureError);
  });
});

describe('VHD header problems are typed errors naming field and offset', () => {
  const cases: Array<[string, (b: Uint8Array) => void, new (...a: never[]) => Error, string, number?]> = [
    ['disk type 5', (b) => (setU32(b, b.length - 512 + 60, 5), refreshFooterChecksum(b, b.length - 512), (b[100] ^= 1)), CorruptImageError, 'diskType', -512 + 60],
    ['dynamic header cookie', (b) => (b[512] = 0x41), CorruptImageError, 'cookie', 512],
    ['dynamic header checksum', (b) => setU32(b, 512 + 28, 6), CorruptImageError, 'checksum', 512 + 36],
    ['block size not a power of two', (b) => (setU32(b, 512 + 32, 3 * 4096), refreshHeaderChecksum(b)), CorruptImageError, 'blockSize', 512 + 32],
    ['block size below a sector', (b) => (setU32(b, 512 + 32, 256), refreshHeaderChecksum(b)), CorruptImageError, 'blockSize', 512 + 32],
    // qemu-afl5-fuzzed.vhd's value, with valid checksums: refused before any allocation.
    ['max_table_entries 0x40000001', (b) => (setU32(b, 512 + 28, 0x40000001), refreshHeaderChecksum(b)), LimitExceededError, 'maxTableEntries', 512 + 28],
    ['BAT too small for the disk', (b) => (setU32(b, 512 + 28, 4), refreshHeaderChecksum(b)), CorruptImageError, 'maxTableEntries', 512 + 28],
    ['BAT past the end of the file', (b) => (setU32(b, 512 + 20, 0x10000000), refreshHeaderChecksum(b)), TruncatedImageError, 'tableOffset', 512 + 16],
    ['block past the end of the file', (b) => setU32(b, 1536 + 4, 0x00ffffff), TruncatedImageError, 'BAT', 1536 + 4],
    ['header offset past the end', (b) => (setU32(b, b.length - 512 + 20, 0x7fffff00), refreshFooterChecksum(b, b.length - 512), (b[100] ^= 1)), TruncatedImageError, 'dataOffset', -512 + 16],
    [
      'virtual size beyond 2040 GiB',
      (b) => {
        new DataView(b.buffer).setBigUint64(b.length - 512 + 48, 2041n * 1073741824n);
        refreshFooterChecksum(b, b.length - 512);
        b[100] ^= 1;
      },
      UnsupportedFeatureError,
      'currentSize',
      -512 + 48,
    ],
    [
      'a 64-bit size above 2^53',
      (b) => {
        new DataView(b.buffer).setBigUint64(b.length - 512 + 48, 1n << 60n);
        refreshFooterChecksum(b, b.length - 512);
        b[100] ^= 1;
      },
      CorruptImageError,
      'currentSize',
      -512 + 48,
    ],
  ];
  for (const [name, damage, type, field, offset] of cases) {
    it(name, async () => {
      const img = good();
      damage(img);
      const e = await openError(img);
      expect(e).toBeInstanceOf(type);
      expect(e.field).toBe(field);
      if (offset !== undefined) expect(e.offset).toBe(offset < 0 ? img.length + offset : offset);
      expect(e.message).toContain('image.vhd');
    });
  }

  it('a fixed disk whose footer claims more data than the file holds', async () => {
    const img = buildFixed(pseudoRandom(34816, 1), { creator: 'win ' });
    new DataView(img.buffer).setBigUint64(34816 + 48, 1n << 20n);
    refreshFooterChecksum(img, 34816);
    const e = await openError(img);
    expect(e).toBeInstanceOf(TruncatedImageError);
    expect(e.field).toBe('currentSize');
  });

  it('a file too small for a footer, and a file that is not a VHD', async () => {
    expect(await openError(new Uint8Array(100))).toBeInstanceOf(TruncatedImageError);
    const e = await openError(new Uint8Array(4096));
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e.message).toMatch(/not a VHD image/);
  });
});
