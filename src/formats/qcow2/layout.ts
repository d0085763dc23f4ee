/**
 * qcow2 on-disk records, constants and masks, in one place (qcow2 spec = QEMU
 * docs/interop/qcow2.txt; limits from block/qcow2.h). Every record is one declared struct, so the
 * parser and the serializer cannot disagree; every table-entry mask has a name and is defined once,
 * as the 64-bit constant the spec gives plus the two 32-bit halves the hot paths use (JavaScript
 * numbers hold 53 bits, and BigInt arithmetic per cluster would dominate a conversion).
 */
import { ascii, bits64be, specFieldName, struct as declare, u16be, u32be, u64be, u8, type Field, type Parsed } from '../shared/struct.js';

/** qcow2 records, whose messages name fields as docs/interop/qcow2.txt does (l1_table_offset). */
const struct = <F extends Record<string, Field<any>>>(name: string, size: number, fields: F) => declare(name, size, fields, { fieldName: specFieldName });

/** "QFI\xFB" at offset 0 (qcow2 spec, header field `magic`); versions 2 and 3 are qcow2, 1 the legacy qcow. */
export const QCOW2_MAGIC = 0x514649fb;

// ---------------------------------------------------------------------------------------------
// Header (spec "Header"); v2 ends at byte 72, v3 adds five fields up to 104.

export const QCOW2_HEADER_V2 = struct('qcow2 header', 72, {
  magic: u32be(0),
  version: u32be(4),
  backingFileOffset: u64be(8),
  backingFileSize: u32be(16),
  clusterBits: u32be(20),
  size: u64be(24),
  cryptMethod: u32be(32),
  l1Size: u32be(36),
  l1TableOffset: u64be(40),
  refcountTableOffset: u64be(48),
  refcountTableClusters: u32be(56),
  nbSnapshots: u32be(60),
  snapshotsOffset: u64be(64),
});

export const QCOW2_HEADER_V3 = struct('qcow2 header', 104, {
  ...QCOW2_HEADER_V2.fields,
  incompatibleFeatures: bits64be(72),
  compatibleFeatures: bits64be(80),
  autoclearFeatures: bits64be(88),
  refcountOrder: u32be(96),
  headerLength: u32be(100),
});

/** Byte 104: compression_type, present only when header_length > 104 (spec "Additional fields"). */
export const COMPRESSION_TYPE_OFFSET = QCOW2_HEADER_V3.size;
export const V2_HEADER_LENGTH = QCOW2_HEADER_V2.size;
export const V3_MIN_HEADER_LENGTH = QCOW2_HEADER_V3.size;
/** What QEMU 7.2 writes: the 104-byte header, compression_type and 7 bytes of padding. */
export const V3_HEADER_LENGTH = 112;

export type Qcow2HeaderV3Fields = Parsed<typeof QCOW2_HEADER_V3>;

// Feature bits (spec "incompatible_features" etc.).
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
export const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;
export const AUTOCLEAR_BITMAPS = 1n << 0n;
/** Only meaningful with INCOMPAT_DATA_FILE (the spec's "bit 1" wording is a typo; QEMU: DATA_FILE_RAW). */
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

export const INCOMPAT_NAMES: Record<number, string> = {
  0: 'dirty bit',
  1: 'corrupt bit',
  2: 'external data file',
  3: 'compression type',
  4: 'extended L2 entries',
};

export const CRYPT_NONE = 0;
export const CRYPT_AES = 1;
export const CRYPT_LUKS = 2;

export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;
export const COMPRESSION_NAMES = ['zlib', 'zstd'] as const;

// ---------------------------------------------------------------------------------------------
// Header extensions (spec "Header extensions"): u32 type, u32 length, data padded to 8.

export const HEADER_EXTENSION = struct('qcow2 header extension', 8, {
  type: u32be(0),
  length: u32be(4),
});

export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO_HEADER = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

export const FEATURE_NAME_ENTRY = struct('qcow2 feature name entry', 48, {
  type: u8(0),
  bit: u8(1),
  name: ascii(2, 46),
});
export const FEATURE_TYPE_INCOMPAT = 0;
export const FEATURE_TYPE_COMPAT = 1;
export const FEATURE_TYPE_AUTOCLEAR = 2;

export const BITMAPS_EXTENSION = struct('qcow2 bitmaps extension', 24, {
  nbBitmaps: u32be(0),
  reserved: u32be(4),
  directorySize: u64be(8),
  directoryOffset: u64be(16),
});

export const CRYPTO_EXTENSION = struct('qcow2 full disk encryption header pointer', 16, {
  offset: u64be(0),
  length: u64be(8),
});

// ---------------------------------------------------------------------------------------------
// Snapshot table entry (spec "Snapshots"). 64-bit fields stay bigint: a hostile table may hold
// anything there, and `check` must report the value rather than refuse to parse it.

export const SNAPSHOT_HEADER = struct('qcow2 snapshot header', 40, {
  l1TableOffset: bits64be(0),
  l1Size: u32be(8),
  idStrSize: u16be(12),
  nameSize: u16be(14),
  dateSec: u32be(16),
  dateNsec: u32be(20),
  vmClockNsec: bits64be(24),
  vmStateSize: u32be(32),
  extraDataSize: u32be(36),
});
export const SNAPSHOT_EXTRA = struct('qcow2 snapshot extra data', 24, {
  vmStateSizeLarge: bits64be(0),
  diskSize: bits64be(8),
  icount: bits64be(16),
});
/** v3 requires extra data up to and including disk_size (spec: "must be at least 16"). */
export const SNAPSHOT_EXTRA_V3_MIN = 16;

// ---------------------------------------------------------------------------------------------
// Persistent bitmaps directory entry (spec "Bitmap directory").

export const BITMAP_DIR_ENTRY = struct('qcow2 bitmap directory entry', 24, {
  bitmapTableOffset: bits64be(0),
  bitmapTableSize: u32be(8),
  flags: u32be(12),
  type: u8(16),
  granularityBits: u8(17),
  nameSize: u16be(18),
  extraDataSize: u32be(20),
});
export const BME_FLAG_IN_USE = 1 << 0;
export const BME_FLAG_AUTO = 1 << 1;
export const BME_TABLE_ENTRY_OFFSET_MASK = 0x00fffffffffffe00n;
export const BME_TABLE_ENTRY_RESERVED_MASK = 0xff000000000001fen;
export const BME_TABLE_ENTRY_FLAG_ALL_ONES = 1n;

// ---------------------------------------------------------------------------------------------
// Limits QEMU enforces (block/qcow2.h), reused as ours so we open what QEMU opens and no more.

export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 splits a cluster into 32 subclusters of at least 512 bytes. */
export const MIN_EXTL2_CLUSTER_BITS = 14;
export const SUBCLUSTERS_PER_CLUSTER = 32;
/** QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** QCOW_MAX_REFTABLE_SIZE: 8 MiB of refcount table. */
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
export const MAX_SNAPSHOTS = 65536;
/** QCOW_MAX_SNAPSHOTS_SIZE: the whole snapshot table, entries and names, within 64 MiB. */
export const MAX_SNAPSHOTS_BYTES = 64 * 1024 * 1024;
export const MAX_SNAPSHOT_EXTRA_DATA = 1024;
/** The backing file name is read into a 1024-byte buffer in QEMU (1023 characters + NUL). */
export const MAX_BACKING_FILE_NAME = 1023;
/** QEMU keeps the backing format in a 16-byte buffer. */
export const MAX_BACKING_FORMAT = 15;
export const MAX_BITMAPS = 65535;
export const MAX_BITMAP_DIRECTORY_BYTES = 1024 * MAX_BITMAPS;
export const MAX_REFCOUNT_ORDER = 6;
/** Compressed cluster payloads are counted in 512-byte sectors (spec "Compressed Clusters Descriptor"). */
export const COMPRESSED_SECTOR = 512;

// ---------------------------------------------------------------------------------------------
// Table entry masks (spec "Cluster mapping"; QEMU qcow2.h names).

export const L1E_OFFSET_MASK = 0x00fffffffffffe00n;
export const L1E_RESERVED_MASK = 0x7f000000000001ffn;
export const L2E_OFFSET_MASK = 0x00fffffffffffe00n;
/** Bits 1–8 and 56–61 of a standard descriptor must be zero. */
export const L2E_STD_RESERVED_MASK = 0x3f000000000001fen;
export const QCOW_OFLAG_COPIED = 1n << 63n;
export const QCOW_OFLAG_COMPRESSED = 1n << 62n;
export const QCOW_OFLAG_ZERO = 1n << 0n;
export const REFT_OFFSET_MASK = 0xfffffffffffffe00n;
export const REFT_RESERVED_MASK = 0x1ffn;
/** Extended L2 bitmap: bits 0–31 allocated subclusters, bits 32–63 zero subclusters. */
export const L2_BITMAP_ALL_ALLOC = 0xffffffffn;
export const L2_BITMAP_ALL_ZERO = 0xffffffff00000000n;

const hi = (m: bigint): number => Number((m >> 32n) & 0xffffffffn);
const lo = (m: bigint): number => Number(m & 0xffffffffn);

/** 32-bit halves of the masks above, for reading entries as two u32 words without BigInt. */
export const L1E_OFFSET_MASK_HI = hi(L1E_OFFSET_MASK);
export const L1E_OFFSET_MASK_LO = lo(L1E_OFFSET_MASK);
export const L1E_RESERVED_MASK_HI = hi(L1E_RESERVED_MASK);
export const L1E_RESERVED_MASK_LO = lo(L1E_RESERVED_MASK);
export const L2E_OFFSET_MASK_HI = hi(L2E_OFFSET_MASK);
export const L2E_OFFSET_MASK_LO = lo(L2E_OFFSET_MASK);
export const L2E_STD_RESERVED_MASK_HI = hi(L2E_STD_RESERVED_MASK);
export const L2E_STD_RESERVED_MASK_LO = lo(L2E_STD_RESERVED_MASK);
export const OFLAG_COPIED_HI = hi(QCOW_OFLAG_COPIED);
export const OFLAG_COMPRESSED_HI = hi(QCOW_OFLAG_COMPRESSED);
export const OFLAG_ZERO_LO = lo(QCOW_OFLAG_ZERO);
export const REFT_OFFSET_MASK_HI = hi(REFT_OFFSET_MASK);
export const REFT_OFFSET_MASK_LO = lo(REFT_OFFSET_MASK);
export const REFT_RESERVED_MASK_LO = lo(REFT_RESERVED_MASK);

/** Joins the offset bits of an entry, given as two 32-bit words, into a number. */
export function entryOffset(hiWord: number, loWord: number, maskHi: number, maskLo: number): number {
  // Offsets reach bit 55, past 2^53: such a value lies petabytes beyond any real file, and every
  // caller compares it with the file size, so the rounding of the top bits cannot matter.
  // `>>> 0` on both halves: `&` yields a signed 32-bit result, negative when bit 31 is kept.
  return ((hiWord & maskHi) >>> 0) * 0x1_0000_0000 + ((loWord & maskLo) >>> 0);
}

/** How QEMU classifies an L2 entry (qcow2.h qcow2_get_cluster_type). */
export const ClusterType = {
  Unallocated: 0,
  Normal: 1,
  ZeroPlain: 2,
  ZeroAlloc: 3,
  Compressed: 4,
} as const;
export type ClusterType = (typeof ClusterType)[keyof typeof ClusterType];

/**
 * Classifies one L2 entry given as two 32-bit words. `extendedL2` disables the ZERO flag (its
 * meaning moves to the subcluster bitmap); `dataFile` makes offset 0 with COPIED a real cluster,
 * since 0 is a valid offset in an external data file.
 */
export function classifyL2(hiWord: number, loWord: number, extendedL2: boolean, dataFile: boolean): ClusterType {
  if (hiWord & OFLAG_COMPRESSED_HI) return ClusterType.Compressed;
  const hasOffset = (hiWord & L2E_OFFSET_MASK_HI) !== 0 || (loWord & L2E_OFFSET_MASK_LO) !== 0;
  if (loWord & OFLAG_ZERO_LO && !extendedL2) return hasOffset ? ClusterType.ZeroAlloc : ClusterType.ZeroPlain;
  if (!hasOffset) return dataFile && hiWord & OFLAG_COPIED_HI ? ClusterType.Normal : ClusterType.Unallocated;
  return ClusterType.Normal;
}

/** Per-unit geometry derived from cluster_bits and the extended-L2 bit. */
export interface Geometry {
  clusterBits: number;
  clusterSize: number;
  extendedL2: boolean;
  /** Bytes per L2 entry: 8, or 16 with extended L2 (descriptor + subcluster bitmap). */
  l2EntryBytes: number;
  /** Entries per L2 table (a table is one cluster). */
  l2Entries: number;
  /** Virtual bytes one L2 table maps. */
  l2Coverage: number;
  subclusterSize: number;
  /** Bit where the compressed descriptor's sector-count field starts: 62 − (cluster_bits − 8). */
  csizeShift: number;
  /** Width of that field: cluster_bits − 8. */
  csizeBits: number;
}

export function geometry(clusterBits: number, extendedL2: boolean): Geometry {
  const clusterSize = 2 ** clusterBits;
  const l2EntryBytes = extendedL2 ? 16 : 8;
  const l2Entries = clusterSize / l2EntryBytes;
  return {
    clusterBits,
    clusterSize,
    extendedL2,
    l2EntryBytes,
    l2Entries,
    l2Coverage: l2Entries * clusterSize,
    subclusterSize: extendedL2 ? clusterSize / SUBCLUSTERS_PER_CLUSTER : clusterSize,
    csizeShift: 62 - (clusterBits - 8),
    csizeBits: clusterBits - 8,
  };
}

/** L1 entries needed for `size` virtual bytes (QEMU size_to_l1). */
export function l1EntriesFor(size: number, g: Geometry): number {
  return Math.ceil(size / g.l2Coverage);
}

/**
 * Decodes a compressed cluster descriptor (spec "Compressed Clusters Descriptor"): the byte offset
 * of the payload and the bytes to read, which run from the offset to the end of the last of
 * (field + 1) 512-byte sectors counted from the sector holding the offset.
 */
export function compressedExtent(hiWord: number, loWord: number, g: Geometry): { offset: number; length: number } {
  const shiftHi = g.csizeShift - 32; // 17..29
  const offsetMaskHi = 2 ** shiftHi - 1;
  const offset = (hiWord & offsetMaskHi) * 0x1_0000_0000 + (loWord >>> 0);
  const sectors = ((hiWord >>> shiftHi) & (2 ** g.csizeBits - 1)) + 1;
  return { offset, length: sectors * COMPRESSED_SECTOR - (offset % COMPRESSED_SECTOR) };
}

/** Encodes a compressed descriptor for a payload of `length` bytes at byte `offset` (no COPIED bit). */
export function compressedDescriptor(offset: number, length: number, g: Geometry): { hi: number; lo: number } {
  const field = Math.floor((offset + length - 1) / COMPRESSED_SECTOR) - Math.floor(offset / COMPRESSED_SECTOR);
  const shiftHi = g.csizeShift - 32;
  const offHi = Math.floor(offset / 0x1_0000_0000);
  return { hi: (OFLAG_COMPRESSED_HI | (field << shiftHi) | offHi) >>> 0, lo: offset % 0x1_0000_0000 };
}
