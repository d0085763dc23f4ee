/**
 * VHD on-disk records (Microsoft "Virtual Hard Disk Image Format Specification" 1.0, as
 * summarized in docs/FORMATS.md §4). Every integer is big-endian.
 *
 *   fixed:        [ data: current_size bytes ][ footer ]
 *   dynamic/diff: [ footer copy ][ dynamic header ][ BAT ][ block: bitmap + data ]…[ footer ]
 */
import { ascii, bits64be, bytes, struct, u16be, u32be, u64be, u8, type Parsed } from '../shared/struct.js';

export const SECTOR = 512;
export const FOOTER_SIZE = 512;
export const DYNAMIC_HEADER_SIZE = 1024;

export const VHD_COOKIE = 'conectix';
export const DYNAMIC_COOKIE = 'cxsparse';

/** Features: bit 1 is "reserved, must be set" (spec, "Features"); bit 0 marks a temporary disk. */
export const FEATURE_TEMPORARY = 0x1;
export const FEATURE_RESERVED = 0x2;
/** File format version 1.0 and dynamic header version 1.0, the only ones defined. */
export const FORMAT_VERSION = 0x00010000;
export const DYNAMIC_HEADER_VERSION = 0x00010000;

/** Footer timestamps count seconds from 2000-01-01T00:00:00Z. */
export const VHD_EPOCH_UNIX = 946_684_800;

/** Footer data offset of a fixed disk: no further structure (all ones, as qemu and Hyper-V write). */
export const NO_DATA_OFFSET = 0xffff_ffff_ffff_ffffn;

export const DiskType = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export type DiskTypeName = keyof typeof DiskType;
export function diskTypeName(t: number): DiskTypeName | undefined {
  return t === 2 ? 'fixed' : t === 3 ? 'dynamic' : t === 4 ? 'differencing' : undefined;
}

/** BAT entry of a block that is not stored in this file. */
export const BAT_UNUSED = 0xffff_ffff;
/** qemu's default and the spec's recommended block size. */
export const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;

/** Four-character codes are stored as big-endian u32; these helpers keep them comparable and printable. */
export function fourcc(text: string): number {
  return ((text.charCodeAt(0) << 24) | (text.charCodeAt(1) << 16) | (text.charCodeAt(2) << 8) | text.charCodeAt(3)) >>> 0;
}
export function fourccText(code: number): string {
  let s = '';
  for (const shift of [24, 16, 8, 0]) {
    const c = (code >>> shift) & 0xff;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : c === 0 ? '\\0' : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** Creator host OS codes (spec, "Creator Host OS"). */
export const HOST_WINDOWS = fourcc('Wi2k');
export const HOST_MAC = fourcc('Mac ');

/** Hard disk footer (spec, "Hard Disk Footer Format"); also the copy at offset 0 of dynamic disks. */
export const FOOTER = struct('VHD footer', FOOTER_SIZE, {
  cookie: ascii(0, 8),
  features: u32be(8),
  formatVersion: u32be(12),
  /** Absolute offset of the dynamic header; all ones for fixed disks. */
  dataOffset: bits64be(16),
  timestamp: u32be(24),
  creatorApp: u32be(28),
  creatorVersion: u32be(32),
  creatorHostOs: u32be(36),
  originalSize: u64be(40),
  currentSize: u64be(48),
  cylinders: u16be(56),
  heads: u8(58),
  sectorsPerTrack: u8(59),
  diskType: u32be(60),
  checksum: u32be(64),
  uniqueId: bytes(68, 16),
  savedState: u8(84),
});
export type VhdFooter = Parsed<typeof FOOTER>;
export const FOOTER_CHECKSUM_AT = FOOTER.offsetOf('checksum');

/** Dynamic disk header (spec, "Dynamic Disk Header Format"), at footer.dataOffset. */
export const DYNAMIC_HEADER = struct('VHD dynamic header', DYNAMIC_HEADER_SIZE, {
  cookie: ascii(0, 8),
  /** Unused; all ones (qemu writes 64 set bits: Microsoft tools expect them). */
  dataOffset: bits64be(8),
  tableOffset: u64be(16),
  headerVersion: u32be(24),
  maxTableEntries: u32be(28),
  blockSize: u32be(32),
  checksum: u32be(36),
  parentUuid: bytes(40, 16),
  parentTimestamp: u32be(56),
  reserved1: u32be(60),
  /** Parent's file name, UTF-16 big-endian, NUL padded. */
  parentName: bytes(64, 512),
});
export type VhdDynamicHeader = Parsed<typeof DYNAMIC_HEADER>;
export const DYNAMIC_HEADER_CHECKSUM_AT = DYNAMIC_HEADER.offsetOf('checksum');

/** Eight parent locator entries follow the parent name (spec, "Parent Locator Entries"). */
export const PARENT_LOCATOR_AT = DYNAMIC_HEADER.offsetOf('parentName') + DYNAMIC_HEADER.fields.parentName.size;
export const PARENT_LOCATOR_COUNT = 8;
export const PARENT_LOCATOR = struct('VHD parent locator', 24, {
  platformCode: u32be(0),
  /** Space reserved for the locator data; the spec says sectors, some writers store bytes. */
  dataSpace: u32be(4),
  dataLength: u32be(8),
  reserved: u32be(12),
  dataOffset: u64be(16),
});
export type VhdParentLocator = Parsed<typeof PARENT_LOCATOR>;

/** Parent locator platform codes (spec, "Platform Code"). */
export const Platform = {
  none: 0,
  /** Deprecated Windows relative/absolute paths, in the system code page. */
  wi2r: fourcc('Wi2r'),
  wi2k: fourcc('Wi2k'),
  /** Windows relative/absolute paths in UTF-16 little-endian. */
  w2ru: fourcc('W2ru'),
  w2ku: fourcc('W2ku'),
  /** Mac OS alias record (a binary blob). */
  mac: fourcc('Mac '),
  /** Mac OS X: a UTF-8 file URL. */
  macx: fourcc('MacX'),
} as const;

/**
 * One's complement of the byte sum of the record, the checksum field counted as zero
 * (spec, "Checksum"); the same algorithm for the footer and the dynamic header.
 */
export function vhdChecksum(record: Uint8Array, checksumAt = FOOTER_CHECKSUM_AT): number {
  let sum = 0;
  for (let i = 0; i < record.length; i++) sum += record[i];
  for (let i = checksumAt; i < checksumAt + 4; i++) sum -= record[i];
  return ~sum >>> 0;
}

/** Stores the record's checksum in it (the footer's field by default) and returns it. */
export function sealChecksum(record: Uint8Array, checksumAt = FOOTER_CHECKSUM_AT): Uint8Array {
  new DataView(record.buffer, record.byteOffset, record.byteLength).setUint32(checksumAt, vhdChecksum(record, checksumAt));
  return record;
}

/** Sector bitmap bytes in front of each block: one bit per sector, padded to a whole sector. */
export function bitmapSizeFor(blockSize: number): number {
  return Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
}
