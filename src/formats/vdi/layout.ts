/**
 * VDI on-disk records (VirtualBox VDICore.h; QEMU block/vdi.c; docs/FORMATS.md §5). Little-endian.
 *
 *   [ pre-header: 64 bytes of text, signature, version ][ header v1.1 ][ LCHS (v1.1+) ]
 *   … [ block map: blocks_in_image × u32 at offBlocks ] … [ blocks at offData ]
 */
import { bytes, struct, u32le, u64le, type Parsed } from '../shared/struct.js';

export const SECTOR = 512;
/** 0xBEDA107F at offset 0x40 (VDI_IMAGE_SIGNATURE). */
export const VDI_SIGNATURE = 0xbeda107f;
/** Header version 1.1 (major << 16 | minor): the only one VirtualBox has written since 2008, and the only one qemu opens. */
export const VDI_VERSION_1_1 = 0x0001_0001;
/** Header sizes counted from offset 0x48: VDIHEADER1, and VDIHEADER1PLUS which adds the LCHS geometry. */
export const HEADER_V1_SIZE = 0x180;
export const HEADER_V1_PLUS_SIZE = 0x190;
/** Pre-header (0x48 bytes) + header size = bytes of the header records from offset 0. */
export const PRE_HEADER_SIZE = 0x48;

export const ImageType = { normal: 1, fixed: 2, undo: 3, diff: 4 } as const;
export function imageTypeName(t: number): 'dynamic' | 'static' | 'undo' | 'diff' | undefined {
  return t === 1 ? 'dynamic' : t === 2 ? 'static' : t === 3 ? 'undo' : t === 4 ? 'diff' : undefined;
}

/** Block map values: a never-written block, and a block discarded to zeros (VDI_IMAGE_BLOCK_FREE / _ZERO). */
export const BLOCK_FREE = 0xffff_ffff;
export const BLOCK_ZERO = 0xffff_fffe;
/** Any smaller value is the index of the block in the data area. */
export const isAllocated = (entry: number): boolean => entry < BLOCK_ZERO;

/** VirtualBox's and qemu's block size; the only one qemu accepts. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;

/** The text VirtualBox writes in the pre-header; readers ignore it, so we use the one every tool knows. */
export const VDI_TEXT = '<<< Oracle VM VirtualBox Disk Image >>>\n';

/** Pre-header and header v1.1, from offset 0 of the file. */
export const VDI_HEADER = struct('VDI header', PRE_HEADER_SIZE + HEADER_V1_SIZE, {
  text: bytes(0x00, 0x40),
  signature: u32le(0x40),
  version: u32le(0x44),
  headerSize: u32le(0x48),
  imageType: u32le(0x4c),
  imageFlags: u32le(0x50),
  comment: bytes(0x54, 256),
  offBlocks: u32le(0x154),
  offData: u32le(0x158),
  /** Legacy geometry (VDIDISKGEOMETRY): cylinders, heads, sectors, sector size. */
  cylinders: u32le(0x15c),
  heads: u32le(0x160),
  sectors: u32le(0x164),
  sectorSize: u32le(0x168),
  /** Old translation mode; unused. */
  dummy: u32le(0x16c),
  diskSize: u64le(0x170),
  blockSize: u32le(0x178),
  blockExtra: u32le(0x17c),
  blocksInImage: u32le(0x180),
  blocksAllocated: u32le(0x184),
  uuidImage: bytes(0x188, 16),
  /** qemu calls it "last snap"; VirtualBox "modification". */
  uuidModify: bytes(0x198, 16),
  uuidLinkage: bytes(0x1a8, 16),
  uuidParentModify: bytes(0x1b8, 16),
});
export type VdiHeader = Parsed<typeof VDI_HEADER>;

/** Logical CHS geometry of VDIHEADER1PLUS, right after the v1 header. */
export const LCHS_AT = PRE_HEADER_SIZE + HEADER_V1_SIZE;
export const VDI_LCHS = struct('VDI LCHS geometry', 16, {
  cylinders: u32le(0),
  heads: u32le(4),
  sectors: u32le(8),
  sectorSize: u32le(12),
});
export type VdiLchs = Parsed<typeof VDI_LCHS>;

/** qemu writes the header into one 512-byte sector and puts the block map right after it. */
export const HEADER_SECTOR = 512;
