/**
 * Unit tests of the pure pieces: entry classification and encoding, refcount packing, the
 * refcount fixed point, host allocation, the one-pass plan, header round trips and refusals.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { Bitmap } from '../../src/formats/shared/bitmap.js';
import { HostAllocator } from '../../src/formats/qcow2/allocator.js';
import { parseExtensions, parseFixedHeader, readHeader } from '../../src/formats/qcow2/header.js';
import { serializeHeader, type HeaderSpec } from '../../src/formats/qcow2/header-write.js';
import {
  ClusterType,
  L1E_OFFSET_MASK,
  L1E_OFFSET_MASK_HI,
  L1E_OFFSET_MASK_LO,
  L2E_STD_RESERVED_MASK,
  L2E_STD_RESERVED_MASK_HI,
  L2E_STD_RESERVED_MASK_LO,
  REFT_OFFSET_MASK_HI,
  REFT_OFFSET_MASK_LO,
  classifyL2,
  compressedDescriptor,
  entryOffset,
  compressedExtent,
  geometry,
} from '../../src/formats/qcow2/layout.js';
import { countBits, planStreamLayout } from '../../src/formats/qcow2/plan.js';
import { getRefcount, getRefcountExact, refcountGeometry, refcountMetadataSize, setRefcount } from '../../src/formats/qcow2/refcount.js';
import { resolveConfig } from '../../src/formats/qcow2/options.js';
import { BufferSource } from '../../src/stream/source.js';

const words = (v: bigint) => ({ hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) });

describe('layout', () => {
  it('32-bit mask halves are the 64-bit masks split', () => {
    expect(BigInt(L1E_OFFSET_MASK_HI) * 2n ** 32n + BigInt(L1E_OFFSET_MASK_LO)).toBe(L1E_OFFSET_MASK);
    expect(BigInt(L2E_STD_RESERVED_MASK_HI) * 2n ** 32n + BigInt(L2E_STD_RESERVED_MASK_LO)).toBe(L2E_STD_RESERVED_MASK);
  });

  it('joins entry words into non-negative offsets, even with bit 63 kept by the mask (refcount table entries)', () => {
    expect(entryOffset(0x80000000, 0x200, REFT_OFFSET_MASK_HI, REFT_OFFSET_MASK_LO)).toBe(2 ** 63 + 512);
    expect(entryOffset(0xffffffff, 0xffffffff, L1E_OFFSET_MASK_HI, L1E_OFFSET_MASK_LO)).toBe(Number(L1E_OFFSET_MASK));
  });

  it("classifies L2 entries as qcow2_get_cluster_type does", () => {
    const c = (v: bigint, ext = false, df = false) => {
      const w = words(v);
      return classifyL2(w.hi, w.lo, ext, df);
    };
    expect(c(0n)).toBe(ClusterType.Unallocated);
    expect(c(0x8000000000050000n)).toBe(ClusterType.Normal);
    expect(c(0x4000000000050000n)).toBe(ClusterType.Compressed);
    expect(c(1n)).toBe(ClusterType.ZeroPlain);
    expect(c(0x50001n)).toBe(ClusterType.ZeroAlloc);
    expect(c(1n, true)).toBe(ClusterType.Unallocated); // extended L2: bit 0 is not the zero flag
    expect(c(0x8000000000000000n, false, true)).toBe(ClusterType.Normal); // data file: offset 0 is valid with COPIED
    expect(c(0x8000000000000000n)).toBe(ClusterType.Unallocated);
  });

  it('decodes the compressed descriptors QEMU wrote (docs/FORMATS.md §2.6)', () => {
    const g = geometry(16, false);
    const a = words(0x4000000000050000n);
    expect(compressedExtent(a.hi, a.lo, g)).toEqual({ offset: 0x50000, length: 512 });
    const b = words(0x400000000005004fn);
    expect(compressedExtent(b.hi, b.lo, g)).toEqual({ offset: 0x5004f, length: 512 - 0x4f });
  });

  it('compressed descriptors round-trip for every cluster size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.nat(2 ** 40), fc.integer({ min: 1, max: 2 ** 21 - 1 }), (bits, offset, len) => {
        const g = geometry(bits, false);
        const length = 1 + (len % (g.clusterSize - 1));
        const d = compressedDescriptor(offset, length, g);
        const e = compressedExtent(d.hi, d.lo, g);
        expect(e.offset).toBe(offset);
        // The sector range covers the payload and ends on the sector holding its last byte.
        expect(e.offset + e.length).toBeGreaterThanOrEqual(offset + length);
        expect(e.offset + e.length - (offset + length)).toBeLessThan(512);
        expect(classifyL2(d.hi, d.lo, false, false)).toBe(ClusterType.Compressed);
      }),
    );
  });
});

describe('refcounts', () => {
  it('packs every width: sub-byte entries from the least significant bits (docs/FORMATS.md §2.4)', () => {
    const block = new Uint8Array(512);
    for (let i = 0; i < 4; i++) setRefcount(block, i, 1, 1);
    expect(block[0]).toBe(0x0f);
    for (const bits of [1, 2, 4, 8, 16, 32, 64]) {
      const b = new Uint8Array(512);
      const n = (512 * 8) / bits;
      const max = bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
      const values = Array.from({ length: n }, (_, i) => (i * 2654435761) % (max + 1));
      values.forEach((v, i) => setRefcount(b, i, bits, v));
      values.forEach((v, i) => expect(getRefcount(b, i, bits)).toBe(v));
      if (bits === 64) {
        values.forEach((v, i) => expect(getRefcountExact(b, i, bits)).toBe(BigInt(v)));
      }
    }
    const wide = new Uint8Array(16);
    setRefcount(wide, 1, 16, 0x1234);
    expect([...wide.subarray(2, 4)]).toEqual([0x12, 0x34]);
  });

  it('refcount structures cover themselves (fixed point)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 5_000_000 }), (cb, order, used) => {
        const rg = refcountGeometry(cb, order);
        const { blocks, tableClusters } = refcountMetadataSize(used, rg);
        expect(blocks * rg.entriesPerBlock).toBeGreaterThanOrEqual(used + blocks + tableClusters);
        expect(tableClusters * (rg.clusterSize / 8)).toBeGreaterThanOrEqual(blocks);
        // Minimal: one block fewer would not cover.
        expect((blocks - 1) * rg.entriesPerBlock).toBeLessThan(used + blocks + tableClusters);
      }),
    );
  });
});

describe('host allocation', () => {
  it('payloads never overlap each other or whole clusters, and refcounts match the payloads touching each cluster', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(9, 12, 16),
        fc.constantFrom(1, 2, 16),
        fc.array(fc.oneof(fc.record({ kind: fc.constant('payload' as const), len: fc.integer({ min: 1, max: 65535 }) }), fc.record({ kind: fc.constant('cluster' as const), n: fc.integer({ min: 1, max: 3 }) })), {
          maxLength: 200,
        }),
        (cb, bits, ops) => {
          const cs = 2 ** cb;
          const max = 2 ** bits - 1;
          const a = new HostAllocator(cs, max, true);
          const used: Array<[number, number]> = [[0, cs]];
          for (const op of ops) {
            if (op.kind === 'cluster') {
              const c = a.clusters(op.n);
              used.push([c * cs, (c + op.n) * cs]);
            } else {
              const len = 1 + ((op.len - 1) % (cs - 1));
              const at = a.payload(len);
              used.push([at, at + len]);
            }
          }
          const sorted = [...used].sort((x, y) => x[0] - y[0]);
          for (let i = 1; i < sorted.length; i++) expect(sorted[i][0]).toBeGreaterThanOrEqual(sorted[i - 1][1]);
          const touching = new Map<number, number>();
          for (const [s, e] of used) for (let c = Math.floor(s / cs); c <= Math.floor((e - 1) / cs); c++) touching.set(c, (touching.get(c) ?? 0) + 1);
          for (let c = 0; c < a.frontier; c++) {
            expect(a.refcount(c)).toBe(touching.get(c) ?? 0);
            expect(a.refcount(c)).toBeGreaterThan(0); // no holes below the frontier
            expect(a.refcount(c)).toBeLessThanOrEqual(max);
          }
        },
      ),
    );
  });
});

describe('one-pass plan', () => {
  it('places every structure once, in order, and counts what the bitmap holds', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(4095), { maxLength: 300 }), (set) => {
        const bm = new Bitmap(4096);
        for (const i of set) bm.set(i);
        const g = geometry(12, false); // 512 entries per L2 table
        const rg = refcountGeometry(12, 4);
        const p = planStreamLayout(bm, g, rg, 8);
        expect(p.dataClusters).toBe(new Set(set).size);
        expect(countBits(bm, 0, 4096)).toBe(p.dataClusters);
        expect(p.tables).toEqual([...new Set(set.map((i) => Math.floor(i / 512)))].sort((a, b) => a - b));
        expect(p.refcountBlockFirst).toBe(1 + p.refcountTableClusters);
        expect(p.l1).toBe(p.refcountBlockFirst + p.refcountBlocks);
        expect(p.dataFirst).toBe(p.l2First + p.tables.length);
        expect(p.total).toBe(p.dataFirst + p.dataClusters);
        expect(p.refcountBlocks * rg.entriesPerBlock).toBeGreaterThanOrEqual(p.total);
      }),
    );
  });

  it('countBits agrees with a bit-by-bit count on any range', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(999), { maxLength: 200 }), fc.nat(1000), fc.nat(1000), (set, a, b) => {
        const bm = new Bitmap(1000);
        for (const i of set) bm.set(i);
        const [from, to] = a <= b ? [a, b] : [b, a];
        let n = 0;
        for (let i = from; i < to; i++) if (bm.get(i)) n++;
        expect(countBits(bm, from, to)).toBe(n);
      }),
    );
  });
});

describe('header', () => {
  const spec = (over: Partial<HeaderSpec> = {}): HeaderSpec => ({
    version: 3,
    clusterBits: 16,
    size: 1 << 30,
    l1Size: 2,
    l1TableOffset: 0x30000,
    refcountTableOffset: 0x10000,
    refcountTableClusters: 1,
    refcountOrder: 4,
    lazyRefcounts: false,
    extendedL2: false,
    compressionType: 0,
    ...over,
  });

  it("serializes what QEMU's create writes: 112-byte header, feature table at 0x70, end marker at 0x1F8 (docs/FORMATS.md §2.3)", async () => {
    const buf = serializeHeader(spec());
    const h = await readHeader(new BufferSource(buf, 'h.qcow2'), { file: 'h.qcow2' });
    expect(h.headerLength).toBe(112);
    expect(new DataView(buf.buffer).getUint32(0x70)).toBe(0x6803f857);
    expect(new DataView(buf.buffer).getUint32(0x74)).toBe(0x180);
    expect(h.extensions.featureNames.map((f) => f.name)).toContain('extended L2 entries');
    expect(h.backingFile).toBeUndefined();
  });

  it('round-trips every field, the backing file and its format, for v2 and v3', async () => {
    for (const s of [
      spec({ backingFile: 'base image.qcow2', backingFormat: 'qcow2', lazyRefcounts: true, extendedL2: true, refcountOrder: 6, l1Size: 4 }),
      spec({ version: 2, backingFile: '/abs/path/base.raw', backingFormat: 'raw' }),
      spec({ clusterBits: 9, l1Size: 32768, backingFile: 'b.qcow2', backingFormat: 'qcow2' }),
      spec({ compressionType: 1 }),
    ]) {
      const buf = serializeHeader(s);
      const h = await readHeader(new BufferSource(buf, 'h'), { file: 'h' });
      expect(h.version).toBe(s.version);
      expect(h.clusterBits).toBe(s.clusterBits);
      expect(h.size).toBe(s.size);
      expect(h.l1Size).toBe(s.l1Size);
      expect(h.l1TableOffset).toBe(s.l1TableOffset);
      expect(h.refcountTableOffset).toBe(s.refcountTableOffset);
      expect(h.refcountBits).toBe(s.version === 2 ? 16 : 2 ** s.refcountOrder);
      expect(h.lazyRefcounts).toBe(s.lazyRefcounts);
      expect(h.geometry.extendedL2).toBe(s.extendedL2);
      expect(h.compressionType).toBe(s.compressionType);
      expect(h.backingFile).toBe(s.backingFile);
      expect(h.extensions.backingFormat).toBe(s.backingFormat);
    }
  });

  it('refuses a backing name that does not fit in a 512-byte cluster', () => {
    expect(() => serializeHeader(spec({ clusterBits: 9, backingFile: 'x'.repeat(400), backingFormat: 'qcow2' }))).toThrow(UnsupportedFeatureError);
  });

  const base = () => serializeHeader(spec());
  const set32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer).setUint32(at, v);
  const parse = (b: Uint8Array) => readHeader(new BufferSource(b, 'bad.qcow2'), { file: 'bad.qcow2' });

  it('names an unknown incompatible feature bit', async () => {
    const b = base();
    new DataView(b.buffer).setBigUint64(72, 1n << 5n);
    const err = await parse(b).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.message).toMatch(/incompatible feature bit 5/);
    expect(err.offset).toBe(72);
  });

  it('refuses encrypted images (AES and LUKS) with a clear message', async () => {
    for (const method of [1, 2]) {
      const b = base();
      set32(b, 32, method);
      const err = await parse(b).catch((e) => e);
      expect(err).toBeInstanceOf(UnsupportedFeatureError);
      expect(err.message).toMatch(/encrypted images are not supported/);
      expect(err.field).toBe('crypt_method');
    }
  });

  it('refuses bad versions, cluster sizes, header lengths and table bounds, naming field and offset', async () => {
    const cases: Array<[string, (b: Uint8Array) => void, new (...a: never[]) => Error, string]> = [
      ['version 4', (b) => set32(b, 4, 4), UnsupportedFeatureError, 'version'],
      ['cluster_bits 8', (b) => set32(b, 20, 8), CorruptImageError, 'cluster_bits'],
      ['cluster_bits 22', (b) => set32(b, 20, 22), UnsupportedFeatureError, 'cluster_bits'],
      ['header_length 100', (b) => set32(b, 100, 100), CorruptImageError, 'header_length'],
      ['refcount_order 7', (b) => set32(b, 96, 7), CorruptImageError, 'refcount_order'],
      ['l1_size too large', (b) => set32(b, 36, 0x7fffffff), LimitExceededError, 'l1_size'],
      ['l1_size too small', (b) => set32(b, 36, 1), CorruptImageError, 'l1_size'],
      ['unaligned L1', (b) => new DataView(b.buffer).setBigUint64(40, 0x30200n), CorruptImageError, 'l1_table_offset'],
      ['huge refcount table', (b) => set32(b, 56, 0x10000), LimitExceededError, 'refcount_table_clusters'],
      ['too many snapshots', (b) => set32(b, 60, 65537), LimitExceededError, 'nb_snapshots'],
      ['size above 2^53', (b) => new DataView(b.buffer).setBigUint64(24, 1n << 60n), CorruptImageError, 'size'],
      ['zstd without its bit', (b) => (b[104] = 1), CorruptImageError, 'incompatible_features'],
      ['extended L2 with 4 KiB clusters', (b) => (set32(b, 20, 12), new DataView(b.buffer).setBigUint64(72, 1n << 4n)), CorruptImageError, 'cluster_bits'],
      ['external data file without a name', (b) => new DataView(b.buffer).setBigUint64(72, 1n << 2n), UnsupportedFeatureError, 'incompatible_features'],
    ];
    for (const [what, edit, type, field] of cases) {
      const b = base();
      edit(b);
      const err = await parse(b).catch((e) => e);
      expect([what, err]).toEqual([what, expect.any(type)]);
      expect([what, err.field]).toEqual([what, field]);
      expect(err.message).toMatch(/^bad\.qcow2: /);
    }
  });

  it('reports dirty and corrupt, and rounds a size that is not a multiple of 512 down as QEMU does', () => {
    const b = base();
    new DataView(b.buffer).setBigUint64(72, 3n);
    new DataView(b.buffer).setBigUint64(24, 1000n);
    const h = parseFixedHeader(b, { file: 'x' });
    expect([h.dirty, h.corrupt, h.virtualSize]).toEqual([true, true, 512]);
    expect(h.warnings.join(' ')).toMatch(/corrupt/);
  });

  it('refuses extensions that run past the header area', () => {
    const buf = new Uint8Array(512);
    new DataView(buf.buffer).setUint32(112, 0x12345678);
    new DataView(buf.buffer).setUint32(116, 1000);
    expect(() => parseExtensions(buf, 112, 512, { version: 3, autoclearFeatures: 0n, cryptMethod: 0, clusterBits: 9 }, 'x', [])).toThrow(CorruptImageError);
  });
});

describe('creation options', () => {
  const cfg = (options: Record<string, unknown>, extra: Record<string, unknown> = {}) => resolveConfig({ virtualSize: 1 << 30, options, file: 'o.qcow2', ...extra });
  it('defaults to version 3, 64 KiB clusters, 16-bit refcounts; rounds the size up to 512', () => {
    const c = resolveConfig({ virtualSize: 1000, options: {}, file: 'o' });
    expect([c.version, c.clusterBits, c.refcountOrder, c.virtualSize]).toEqual([3, 16, 4, 1024]);
  });
  it("refuses what qemu-img refuses, with its wording", () => {
    for (const [o, re] of [
      [{ cluster_size: '3k' }, /power of two between 512 and 2048k/],
      [{ cluster_size: '4M' }, /power of two between 512 and 2048k/],
      [{ compat: '0.10', lazy_refcounts: 'on' }, /Lazy refcounts only supported with compatibility level 1.1/],
      [{ compat: '0.10', refcount_bits: '8' }, /refcount widths than 16 bits/],
      [{ refcount_bits: '3' }, /power of two/],
      [{ extended_l2: 'on', cluster_size: '4k' }, /at least 16384/],
      [{ backing_file: 'b.qcow2' }, /backing_fmt is required/],
      [{ encrypt: 'on' }, /encrypt/],
      [{ preallocation: 'full' }, /preallocation/],
    ] as const) {
      expect(() => cfg(o as Record<string, unknown>)).toThrow(UsageError);
      expect(() => cfg(o as Record<string, unknown>)).toThrow(re);
    }
    expect(() => cfg({ compression_type: 'zstd' }, { compress: true })).toThrow(UnsupportedFeatureError);
    expect(() => resolveConfig({ virtualSize: 2 ** 50, options: { cluster_size: '512' }, file: 'o' })).toThrow(/too large/);
  });
});

describe('driver edges', () => {
  it('reading from a pipe is refused clearly (the tables need random access)', async () => {
    const { Readable } = await import('node:stream');
    const { StreamSource } = await import('../../src/stream/source.js');
    const { qcow2Driver } = await import('../../src/formats/qcow2/driver.js');
    const { rootContext } = await import('../../src/formats/open.js');
    const bytes = serializeHeader({ version: 3, clusterBits: 16, size: 1 << 20, l1Size: 1, l1TableOffset: 0x30000, refcountTableOffset: 0x10000, refcountTableClusters: 1, refcountOrder: 4, lazyRefcounts: false, extendedL2: false, compressionType: 0 });
    const err = await qcow2Driver.open!(new StreamSource(Readable.from([Buffer.from(bytes)])), rootContext('-', undefined, {})).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.message).toMatch(/pipe/);
  });

  it('a writer fed out of order refuses, and abort() waits for compression jobs', async () => {
    const { qcow2Driver } = await import('../../src/formats/qcow2/driver.js');
    const { BufferSink } = await import('../../src/stream/sink.js');
    const w = await qcow2Driver.create!(new BufferSink('x'), { virtualSize: 1 << 20, options: {}, compress: true, file: 'x.qcow2' });
    await w.write(65536, new Uint8Array(65536).fill(1));
    await expect(w.write(0, new Uint8Array(65536))).rejects.toBeInstanceOf(UsageError);
    await expect(w.write(1 << 20, new Uint8Array(512))).rejects.toBeInstanceOf(UsageError);
    await w.abort();
  });
});
