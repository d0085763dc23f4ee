/**
 * VHDX on-disk records (MS-VHDX 2.2–2.6; docs/FORMATS.md §6). Little-endian; GUIDs in Microsoft
 * order. Every 64 KiB structure below is at a fixed offset; everything else is found through the
 * region table and is 1 MiB aligned.
 */
import { ascii, bits64le, bytes, struct, u16le, u32le, u64le, type Parsed } from '../shared/struct.js';
import { parseUuid } from '../shared/uuid.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const FILE_ID_OFFSET = 0;
export const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
export const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
/** The header's checksum covers its first 4 KiB; region and metadata tables are 64 KiB. */
export const HEADER_SIZE = 4 * KiB;
export const TABLE_SIZE = 64 * KiB;
/** Every structure found through the region table, and every payload block, is 1 MiB aligned (2.2). */
export const ALIGNMENT = MiB;
export const FILE_SIGNATURE = 'vhdxfile';
export const HEADER_SIGNATURE = 'head';
export const REGION_SIGNATURE = 'regi';
export const METADATA_SIGNATURE = 'metadata';
/** Offset of the checksum in headers, region tables and log entries. */
export const CHECKSUM_AT = 4;
/** Version 1 is the only one defined; LogVersion 0 likewise. */
export const VHDX_VERSION = 1;
export const LOG_VERSION = 0;

const guid = (text: string): Uint8Array => parseUuid(text, 'guid')!;
export const REGION_BAT = guid('2dc27766-f623-4200-9d64-115e9bfd4a08');
export const REGION_METADATA = guid('8b7ca206-4790-4b9a-b8fe-575f050f886e');
export const ITEM_FILE_PARAMETERS = guid('caa16737-fa36-4d43-b3b6-33f0aa44e76b');
export const ITEM_VIRTUAL_DISK_SIZE = guid('2fa54224-cd1b-4876-b211-5dbed83bf4b8');
export const ITEM_PAGE83 = guid('beca12ab-b2e6-4523-93ef-c309e000c746');
export const ITEM_LOGICAL_SECTOR_SIZE = guid('8141bf1d-a96f-4709-ba47-f233a8faab5f');
export const ITEM_PHYSICAL_SECTOR_SIZE = guid('cda348c7-445d-4471-9cc9-e9885251c556');
export const ITEM_PARENT_LOCATOR = guid('a8d35f2d-b30b-454d-abf7-d3d84834ab0c');
/** The one parent locator type defined for VHDX (2.6.2.6). */
export const PARENT_LOCATOR_VHDX = guid('b04aefb7-d19e-4a81-b789-25b8e9445913');

export const FILE_ID = struct('VHDX file identifier', 8 + 512, {
  signature: ascii(0, 8),
  creator: bytes(8, 512),
});

export const VHDX_HEADER = struct('VHDX header', 80, {
  signature: ascii(0, 4),
  checksum: u32le(4),
  sequenceNumber: bits64le(8),
  fileWriteGuid: bytes(16, 16),
  dataWriteGuid: bytes(32, 16),
  logGuid: bytes(48, 16),
  logVersion: u16le(64),
  version: u16le(66),
  logLength: u32le(68),
  logOffset: u64le(72),
});
export type VhdxHeader = Parsed<typeof VHDX_HEADER>;

export const REGION_TABLE_HEADER = struct('VHDX region table header', 16, {
  signature: ascii(0, 4),
  checksum: u32le(4),
  entryCount: u32le(8),
  reserved: u32le(12),
});
export const REGION_ENTRY = struct('VHDX region table entry', 32, {
  guid: bytes(0, 16),
  fileOffset: u64le(16),
  length: u32le(24),
  flags: u32le(28),
});
export type RegionEntry = Parsed<typeof REGION_ENTRY>;
/** 2047 entries fill the 64 KiB table (2.2.3). */
export const MAX_REGION_ENTRIES = 2047;
export const REGION_REQUIRED = 1;

export const METADATA_TABLE_HEADER = struct('VHDX metadata table header', 32, {
  signature: ascii(0, 8),
  reserved: u16le(8),
  entryCount: u16le(10),
});
export const METADATA_ENTRY = struct('VHDX metadata table entry', 32, {
  itemId: bytes(0, 16),
  offset: u32le(16),
  length: u32le(20),
  flags: u32le(24),
  reserved: u32le(28),
});
export type MetadataEntry = Parsed<typeof METADATA_ENTRY>;
export const MAX_METADATA_ENTRIES = 2047;
export const METADATA_IS_USER = 1;
export const METADATA_IS_VIRTUAL_DISK = 2;
export const METADATA_IS_REQUIRED = 4;

export const FILE_PARAMETERS = struct('VHDX file parameters', 8, { blockSize: u32le(0), flags: u32le(4) });
export const PARAM_LEAVE_BLOCKS_ALLOCATED = 1;
export const PARAM_HAS_PARENT = 2;
export const MIN_BLOCK_SIZE = MiB;
export const MAX_BLOCK_SIZE = 256 * MiB;
/** 64 TiB: the largest virtual disk the spec allows (2.6.2.2). */
export const MAX_VIRTUAL_SIZE = 64 * 1024 * 1024 * MiB;

export const PARENT_LOCATOR_HEADER = struct('VHDX parent locator header', 20, {
  locatorType: bytes(0, 16),
  reserved: u16le(16),
  keyValueCount: u16le(18),
});
export const PARENT_LOCATOR_ENTRY = struct('VHDX parent locator entry', 12, {
  keyOffset: u32le(0),
  valueOffset: u32le(4),
  keyLength: u16le(8),
  valueLength: u16le(10),
});

/** BAT entry: state in bits 0–2, file offset in MiB in bits 20–63 (2.5.1). */
export const BAT_STATE_MASK = 7n;
export const BAT_OFFSET_SHIFT = 20n;
export const PayloadState = {
  notPresent: 0,
  undefined: 1,
  zero: 2,
  unmapped: 3,
  /** Older QEMU wrote 5 for UNMAPPED, after a draft of the spec; still read as unmapped. */
  unmappedV095: 5,
  fullyPresent: 6,
  partiallyPresent: 7,
} as const;
export const SB_BLOCK_PRESENT = 6;
/** A sector bitmap block covers chunk_ratio payload blocks with one bit per logical sector. */
export const SECTOR_BITMAP_BLOCK = MiB;

/** chunk_ratio = (2^23 × logical sector size) / block size (2.5.1): payload blocks per sector bitmap block. */
export const chunkRatio = (logicalSectorSize: number, blockSize: number): number => (2 ** 23 * logicalSectorSize) / blockSize;

/** BAT entries a disk needs: payload entries with one sector bitmap entry after every chunk (2.5.1). */
export function batEntries(virtualSize: number, blockSize: number, logicalSectorSize: number, hasParent: boolean): number {
  const blocks = Math.ceil(virtualSize / blockSize);
  const ratio = chunkRatio(logicalSectorSize, blockSize);
  const chunks = Math.ceil(blocks / ratio);
  // A differencing disk has a sector bitmap entry for every chunk; otherwise the last one is left out.
  return hasParent ? chunks * (ratio + 1) : blocks + Math.floor(Math.max(blocks - 1, 0) / ratio);
}
/** BAT index of payload block i. */
export const payloadIndex = (block: number, ratio: number): number => block + Math.floor(block / ratio);
/** BAT index of the sector bitmap entry of chunk c. */
export const bitmapIndex = (chunk: number, ratio: number): number => chunk * (ratio + 1) + ratio;

/** The log (2.3): 4 KiB sectors; entries start with a header, then descriptors, then data sectors. */
export const LOG_SECTOR = 4 * KiB;
export const LOG_ENTRY_HEADER = struct('VHDX log entry header', 64, {
  signature: ascii(0, 4),
  checksum: u32le(4),
  entryLength: u32le(8),
  tail: u32le(12),
  sequenceNumber: bits64le(16),
  descriptorCount: u32le(24),
  reserved: u32le(28),
  logGuid: bytes(32, 16),
  flushedFileOffset: u64le(48),
  lastFileOffset: u64le(56),
});
export type LogEntryHeader = Parsed<typeof LOG_ENTRY_HEADER>;
export const LOG_ENTRY_SIGNATURE = 'loge';
export const LOG_DESCRIPTOR_SIZE = 32;
export const LOG_ZERO_SIGNATURE = 'zero';
export const LOG_DATA_DESC_SIGNATURE = 'desc';
export const LOG_DATA_SIGNATURE = 'data';
export const LOG_ZERO_DESCRIPTOR = struct('VHDX log zero descriptor', 32, {
  signature: ascii(0, 4),
  reserved: u32le(4),
  zeroLength: u64le(8),
  fileOffset: u64le(16),
  sequenceNumber: bits64le(24),
});
export const LOG_DATA_DESCRIPTOR = struct('VHDX log data descriptor', 32, {
  signature: ascii(0, 4),
  trailingBytes: bytes(4, 4),
  leadingBytes: bytes(8, 8),
  fileOffset: u64le(16),
  sequenceNumber: bits64le(24),
});
/** A data sector: signature, sequence high, 4084 bytes, sequence low (2.3.1.4). */
export const LOG_DATA_SECTOR = struct('VHDX log data sector', 4096, {
  signature: ascii(0, 4),
  sequenceHigh: u32le(4),
  data: bytes(8, 4084),
  sequenceLow: u32le(4092),
});
