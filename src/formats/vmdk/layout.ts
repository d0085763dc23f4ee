/**
 * VMDK binary records and constants (docs/FORMATS.md §3; VMware "Virtual Disk Format 1.1" as mirrored
 * by open-vmdk's vmware_vmdk.h; QEMU block/vmdk.c). Every binary record is declared once here and
 * gives both its parser and its serializer. All integers are little-endian.
 */
import { ascii, bits64le, bytes, struct, u16le, u32le, u64le, u8, type Parsed } from '../shared/struct.js';

/** Everything in VMDK is counted in 512-byte sectors. */
export const SECTOR = 512;

/** "KDMV" read as a little-endian u32 (hosted sparse extent, §3.3). */
export const SPARSE_MAGIC_LE = 0x564d444b;
/** "COWD" read as a little-endian u32 (ESX vmfsSparse delta, §3.6). */
export const COWD_MAGIC_LE = 0x44574f43;

// Header flags (§3.3). The low 16 bits are compatible, the high 16 incompatible: an unknown high
// bit means the extent uses something we cannot interpret (open-vmdk refuses them too).
export const FLAG_NEWLINE_DETECT = 0x1;
export const FLAG_REDUNDANT_GD = 0x2;
export const FLAG_ZEROED_GRAIN_GTE = 0x4;
export const FLAG_COMPRESSED = 0x10000;
export const FLAG_MARKERS = 0x20000;
export const KNOWN_INCOMPATIBLE_FLAGS = FLAG_COMPRESSED | FLAG_MARKERS;
export const INCOMPATIBLE_FLAGS_MASK = 0xffff0000;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** gdOffset value meaning "the grain directory is found through the footer" (streamOptimized). */
export const GD_AT_END = 0xffffffffffffffffn;

/** A grain-table entry of 1 is a zeroed grain when FLAG_ZEROED_GRAIN_GTE is set (version ≥ 2). */
export const GTE_ZEROED = 1;
/** GT entry 0: grain not allocated in this extent (parent or zeros). */
export const GTE_UNALLOCATED = 0;

// Bounds. Each protects memory or time against a hostile header.
/** QEMU refuses more entries per grain table ("L2 table size too big"); VMware always writes 512. */
export const MAX_GTES_PER_GT = 512;
/** A grain larger than 1 GiB is unrealistic (QEMU: "Invalid granularity, image may be corrupt"). */
export const MAX_GRAIN_SECTORS = 0x200000;
/**
 * Compressed grains are decoded whole, so their size is what one read costs in memory. VMware
 * writes 64 KiB grains and open-vmdk allows at most 128 sectors; 1 MiB leaves room and keeps a
 * hostile header from turning a small file into gigabytes of inflate output.
 */
export const MAX_COMPRESSED_GRAIN_SECTORS = 2048;
/**
 * Grain directory entries: QEMU's "L1 size too big" limit (32 Mi entries covers 8 TiB at the
 * smallest grains, beyond the 2 TiB a hosted sparse extent can address).
 */
export const MAX_GD_ENTRIES = 32 * 1024 * 1024;
/** The largest extent a 32-bit grain sector number can address (QEMU VMDK_EXTENT_MAX_SECTORS). */
export const MAX_EXTENT_SECTORS = 2 ** 32;
/** QEMU reads at most this much of a descriptor file; a larger "descriptor" is not one. */
export const MAX_DESCRIPTOR_BYTES = (1 << 20) - 1;
/** Grain tables kept in memory per extent (2 KiB each for KDMV, 16 KiB for COWD). */
export const GT_CACHE_ENTRIES = 64;
/** Decoded compressed grains kept for reads that do not start at a grain boundary. */
export const GRAIN_CACHE_ENTRIES = 8;

// What QEMU and VMware write (§3.7).
export const DEFAULT_GRAIN_SECTORS = 128;
export const DEFAULT_GTES_PER_GT = 512;
/** QEMU reserves 20 sectors for the embedded descriptor of a monolithicSparse extent. */
export const EMBEDDED_DESCRIPTOR_SECTORS = 20;
/** Split subformats cut the disk into 2 GiB extents (QEMU and VMware: a constant). */
export const SPLIT_EXTENT_BYTES = 0x80000000;
/** VMware stream writers start the first grain at sector 128 (the ESXi/ovftool samples do). */
export const STREAM_OVERHEAD_ALIGN_SECTORS = 128;

/** The four "newline check" bytes that detect FTP text-mode corruption: "\n \r\n". */
export const NEWLINE_CHECK = Uint8Array.of(0x0a, 0x20, 0x0d, 0x0a);

/** Hosted sparse extent header, one sector at offset 0 and again as the stream footer (§3.3). */
export const SPARSE_HEADER = struct('VMDK sparse header', SECTOR, {
  magic: u32le(0),
  version: u32le(4),
  flags: u32le(8),
  /** Sectors. Kept as bigint: a hostile value must become "too big", not an unsafe number. */
  capacity: bits64le(12),
  grainSize: bits64le(20),
  descriptorOffset: u64le(28),
  descriptorSize: u64le(36),
  numGTEsPerGT: u32le(44),
  rgdOffset: u64le(48),
  /** Sector of the grain directory, or GD_AT_END. */
  gdOffset: bits64le(56),
  overHead: u64le(64),
  uncleanShutdown: u8(72),
  newlineCheck: bytes(73, 4),
  compressAlgorithm: u16le(77),
});
export type SparseHeader = Parsed<typeof SPARSE_HEADER>;

/** Grain marker of a streamOptimized extent: LBA, compressed size, then the data (§3.5). */
export const GRAIN_MARKER = struct('VMDK grain marker', 12, {
  lba: bits64le(0),
  size: u32le(8),
});

/** Metadata marker: a whole sector; size 0 tells it from a grain marker (§3.5). */
export const METADATA_MARKER = struct('VMDK metadata marker', SECTOR, {
  numSectors: bits64le(0),
  size: u32le(8),
  type: u32le(12),
});

export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;
/** open-vmdk progress marker, skipped by readers. */
export const MARKER_PROGRESS = 4;

/**
 * ESX COWD (vmfsSparse) header, 2048 bytes (libvmdk documentation, "COWD sparse extent header").
 * A root disk keeps its geometry where a delta keeps the parent file name (a union at 32); QEMU
 * uses neither, and neither do we: parents come from the descriptor.
 */
export const COWD_HEADER = struct('VMDK COWD header', 2048, {
  magic: u32le(0),
  version: u32le(4),
  flags: u32le(8),
  capacity: u32le(12),
  grainSize: u32le(16),
  gdOffset: u32le(20),
  numGDEntries: u32le(24),
  freeSector: u32le(28),
  parentFileName: ascii(32, 1024),
  parentGeneration: u32le(1056),
  generation: u32le(1060),
  name: ascii(1064, 60),
  description: ascii(1124, 512),
  savedGeneration: u32le(1636),
  uncleanShutdown: u32le(1648),
});
export type CowdHeader = Parsed<typeof COWD_HEADER>;
/** A COWD grain table always holds 4096 entries (QEMU vmdk_open_vmfs_sparse). */
export const COWD_GTES_PER_GT = 4096;

/** Sectors a grain directory or grain table of `entries` u32 entries occupies. */
export const tableSectors = (entries: number): number => Math.ceil((entries * 4) / SECTOR);

/** A grain directory or table as little-endian bytes, padded to whole sectors. */
export function tableBytes(entries: Uint32Array): Uint8Array {
  const out = new Uint8Array(tableSectors(entries.length) * SECTOR);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < entries.length; i++) dv.setUint32(i * 4, entries[i], true);
  return out;
}
