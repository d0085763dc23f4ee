/**
 * The steps of qcow2 header validation, each on its own, and the error locations they give: the
 * offsets come from the layout, so they are checked here against the spec's table of fields.
 */
import { describe, expect, it } from 'vitest';
import { CorruptImageError, UnsupportedFeatureError } from '../../src/errors.js';
import {
  checkBackingName,
  checkClusterBits,
  checkIdentity,
  checkNotEncrypted,
  checkRefcountAndCompression,
  checkTables,
  headerField,
  headerGeometry,
  headerWarnings,
  readV3Fields,
} from '../../src/formats/qcow2/header.js';
import { QCOW2_HEADER_V2, QCOW2_HEADER_V3, QCOW2_MAGIC, geometry } from '../../src/formats/qcow2/layout.js';

/** docs/interop/qcow2.txt, "Header": byte offset of each field. */
const SPEC_OFFSETS = {
  magic: 0,
  version: 4,
  backing_file_offset: 8,
  backing_file_size: 16,
  cluster_bits: 20,
  size: 24,
  crypt_method: 32,
  l1_size: 36,
  l1_table_offset: 40,
  refcount_table_offset: 48,
  refcount_table_clusters: 56,
  nb_snapshots: 60,
  snapshots_offset: 64,
  incompatible_features: 72,
  compatible_features: 80,
  autoclear_features: 88,
  refcount_order: 96,
  header_length: 100,
};

const v2Fields = (over: Partial<Parameters<typeof QCOW2_HEADER_V2.serialize>[0]> = {}) => ({
  magic: QCOW2_MAGIC,
  version: 3,
  backingFileOffset: 0,
  backingFileSize: 0,
  clusterBits: 16,
  size: 1 << 20,
  cryptMethod: 0,
  l1Size: 1,
  l1TableOffset: 0x30000,
  refcountTableOffset: 0x10000,
  refcountTableClusters: 1,
  nbSnapshots: 0,
  snapshotsOffset: 0,
  ...over,
});

function thrown(f: () => unknown): { type: unknown; field?: string; offset?: number } {
  try {
    f();
  } catch (e) {
    const g = e as CorruptImageError;
    return { type: g.constructor, field: g.field, offset: g.offset };
  }
  throw new Error('expected a refusal');
}

describe('qcow2 header steps', () => {
  it('every header field is named as the spec names it, at the spec offset', () => {
    for (const key of Object.keys(QCOW2_HEADER_V3.fields) as (keyof typeof QCOW2_HEADER_V3.fields)[]) {
      const w = headerField('x', key);
      expect(SPEC_OFFSETS[w.field as keyof typeof SPEC_OFFSETS], key).toBe(w.offset);
    }
    expect(Object.keys(QCOW2_HEADER_V3.fields)).toHaveLength(Object.keys(SPEC_OFFSETS).length);
  });

  it('checkIdentity: magic, then version 2 or 3', () => {
    expect(checkIdentity(v2Fields(), 'x')).toBe(3);
    expect(checkIdentity(v2Fields({ version: 2 }), 'x')).toBe(2);
    expect(thrown(() => checkIdentity(v2Fields({ magic: 1 }), 'x'))).toEqual({ type: CorruptImageError, field: 'magic', offset: 0 });
    expect(thrown(() => checkIdentity(v2Fields({ version: 4 }), 'x'))).toEqual({ type: UnsupportedFeatureError, field: 'version', offset: 4 });
  });

  it('checkClusterBits: 512 bytes to 2 MiB', () => {
    expect(checkClusterBits(9, 'x')).toBe(512);
    expect(checkClusterBits(21, 'x')).toBe(2 * 1024 * 1024);
    expect(thrown(() => checkClusterBits(8, 'x'))).toEqual({ type: CorruptImageError, field: 'cluster_bits', offset: 20 });
    expect(thrown(() => checkClusterBits(22, 'x'))).toEqual({ type: UnsupportedFeatureError, field: 'cluster_bits', offset: 20 });
  });

  it('readV3Fields: header_length bounds, compression_type only when header_length reaches it', () => {
    const buf = new Uint8Array(112);
    QCOW2_HEADER_V3.serialize({ ...v2Fields(), incompatibleFeatures: 8n, compatibleFeatures: 0n, autoclearFeatures: 0n, refcountOrder: 4, headerLength: 112 }, buf);
    buf[104] = 1;
    expect(readV3Fields(buf, 65536, 'x')).toMatchObject({ headerLength: 112, compressionType: 1, incompatibleFeatures: 8n });
    new DataView(buf.buffer).setUint32(100, 104);
    expect(readV3Fields(buf, 65536, 'x').compressionType).toBe(0);
    new DataView(buf.buffer).setUint32(100, 103);
    expect(thrown(() => readV3Fields(buf, 65536, 'x'))).toEqual({ type: CorruptImageError, field: 'header_length', offset: 100 });
    new DataView(buf.buffer).setUint32(100, 1024);
    expect(thrown(() => readV3Fields(buf, 512, 'x'))).toEqual({ type: CorruptImageError, field: 'header_length', offset: 100 });
    expect(thrown(() => readV3Fields(buf.subarray(0, 104), 65536, 'x'))).toEqual({ type: CorruptImageError, field: 'compression_type', offset: 104 });
  });

  it('checkBackingName: inside the first cluster and not longer than QEMU reads', () => {
    checkBackingName(v2Fields({ backingFileOffset: 512, backingFileSize: 100 }), 65536, 'x');
    expect(thrown(() => checkBackingName(v2Fields({ backingFileOffset: 70000 }), 65536, 'x'))).toMatchObject({ field: 'backing_file_offset', offset: 8 });
    expect(thrown(() => checkBackingName(v2Fields({ backingFileOffset: 400, backingFileSize: 200 }), 512, 'x'))).toMatchObject({ field: 'backing_file_size', offset: 16 });
  });

  it('checkNotEncrypted and checkRefcountAndCompression', () => {
    checkNotEncrypted(0, 'x');
    expect(thrown(() => checkNotEncrypted(2, 'x'))).toEqual({ type: UnsupportedFeatureError, field: 'crypt_method', offset: 32 });
    const v3 = { incompatibleFeatures: 0n, compatibleFeatures: 0n, autoclearFeatures: 0n, refcountOrder: 4, headerLength: 104, compressionType: 0 };
    checkRefcountAndCompression(v3, 'x');
    checkRefcountAndCompression({ ...v3, compressionType: 1, incompatibleFeatures: 8n }, 'x');
    expect(thrown(() => checkRefcountAndCompression({ ...v3, refcountOrder: 7 }, 'x'))).toMatchObject({ field: 'refcount_order', offset: 96 });
    expect(thrown(() => checkRefcountAndCompression({ ...v3, compressionType: 1 }, 'x'))).toMatchObject({ field: 'incompatible_features', offset: 72 });
    expect(thrown(() => checkRefcountAndCompression({ ...v3, incompatibleFeatures: 8n }, 'x'))).toMatchObject({ field: 'incompatible_features', offset: 72 });
    expect(thrown(() => checkRefcountAndCompression({ ...v3, compressionType: 9 }, 'x'))).toMatchObject({ field: 'compression_type', offset: 104 });
  });

  it('headerGeometry: extended L2 needs 16 KiB clusters', () => {
    expect(headerGeometry(16, 1n << 4n, 'x').extendedL2).toBe(true);
    expect(headerGeometry(12, 0n, 'x').extendedL2).toBe(false);
    expect(thrown(() => headerGeometry(12, 1n << 4n, 'x'))).toMatchObject({ field: 'cluster_bits', offset: 20 });
  });

  it('checkTables: bounds, alignment and an L1 table that covers the disk; the size in whole sectors', () => {
    const g = geometry(16, false);
    expect(checkTables(v2Fields({ size: (1 << 20) + 100 }), g, { file: 'x' })).toBe(1 << 20);
    const cases: [Partial<ReturnType<typeof v2Fields>>, string, number][] = [
      [{ refcountTableClusters: 0 }, 'refcount_table_clusters', 56],
      [{ refcountTableOffset: 0x10200 }, 'refcount_table_offset', 48],
      [{ nbSnapshots: 65537 }, 'nb_snapshots', 60],
      [{ snapshotsOffset: 0x200 }, 'snapshots_offset', 64],
      [{ l1Size: 0x7fffffff }, 'l1_size', 36],
      [{ l1TableOffset: 0x30200 }, 'l1_table_offset', 40],
      [{ l1Size: 0, size: 1 << 30 }, 'l1_size', 36],
    ];
    for (const [over, field, offset] of cases) expect(thrown(() => checkTables(v2Fields(over), g, { file: 'x' }))).toMatchObject({ field, offset });
    // qemu-img check opens an image without a refcount table, to repair it.
    expect(checkTables(v2Fields({ refcountTableClusters: 0 }), g, { file: 'x', forCheck: true })).toBe(1 << 20);
  });

  it('headerWarnings: a rounded size, the corrupt and dirty bits', () => {
    expect(headerWarnings(1024, 1024, 0n)).toEqual([]);
    const w = headerWarnings(1000, 512, 3n);
    expect(w).toHaveLength(3);
    expect(w.join(' ')).toMatch(/multiple of 512.*corrupt.*dirty/);
  });
});
