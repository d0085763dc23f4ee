/**
 * The ext2/3/4 superblock and group descriptors (kernel Documentation/filesystems/ext4/super.rst,
 * group_descr.rst). Only what reading needs is parsed; every count that sizes a loop or a read is
 * bounded here, once.
 */
import { CorruptImageError, UnsupportedFeatureError } from '../../../errors.js';
import { inRange, isPowerOfTwo } from '../../../formats/shared/bounds.js';
import { bytes, struct, u16le, u32le, u8 } from '../../../formats/shared/struct.js';
import { crc32cRaw } from '../../../formats/shared/crc32c.js';

export const SUPERBLOCK_OFFSET = 1024;
export const EXT_MAGIC = 0xef53;

export const SUPERBLOCK = struct('ext superblock', 1024, {
  inodesCount: u32le(0x00),
  blocksCountLo: u32le(0x04),
  firstDataBlock: u32le(0x14),
  logBlockSize: u32le(0x18),
  logClusterSize: u32le(0x1c),
  blocksPerGroup: u32le(0x20),
  inodesPerGroup: u32le(0x28),
  magic: u16le(0x38),
  state: u16le(0x3a),
  revLevel: u32le(0x4c),
  firstIno: u32le(0x54),
  inodeSize: u16le(0x58),
  featureCompat: u32le(0x5c),
  featureIncompat: u32le(0x60),
  featureRoCompat: u32le(0x64),
  uuid: bytes(0x68, 16),
  volumeName: bytes(0x78, 16),
  descSize: u16le(0xfe),
  firstMetaBg: u32le(0x104),
  blocksCountHi: u32le(0x150),
  checksumType: u8(0x175),
  checksumSeed: u32le(0x270),
  checksum: u32le(0x3fc),
});

export const COMPAT_HAS_JOURNAL = 0x4;
export const INCOMPAT = {
  COMPRESSION: 0x1,
  FILETYPE: 0x2,
  RECOVER: 0x4,
  JOURNAL_DEV: 0x8,
  META_BG: 0x10,
  EXTENTS: 0x40,
  BIT64: 0x80,
  MMP: 0x100,
  FLEX_BG: 0x200,
  EA_INODE: 0x400,
  DIRDATA: 0x1000,
  CSUM_SEED: 0x2000,
  LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000,
  ENCRYPT: 0x10000,
  CASEFOLD: 0x20000,
} as const;
export const RO_COMPAT = { HUGE_FILE: 0x8, GDT_CSUM: 0x10, BIGALLOC: 0x200, METADATA_CSUM: 0x400 } as const;

/** What this reader understands; anything else in s_feature_incompat changes how bytes are laid out, so reading on would misread. */
const INCOMPAT_READABLE =
  INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG | INCOMPAT.EXTENTS | INCOMPAT.BIT64 | INCOMPAT.MMP | INCOMPAT.FLEX_BG |
  INCOMPAT.EA_INODE | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR | INCOMPAT.INLINE_DATA;
/** e2fsprogs' names (lib/e2p/feature.c), so the refusal names what `dumpe2fs` would show. */
const INCOMPAT_NAMES: Record<number, string> = {
  0x1: 'compression', 0x8: 'journal_dev', 0x1000: 'dirdata', 0x10000: 'encrypt', 0x20000: 'casefold',
  0x20: 'FEATURE_I5', 0x800: 'FEATURE_I11',
};

/** 64 KiB: the largest block size the kernel mounts (s_log_block_size 6). */
const MAX_LOG_BLOCK_SIZE = 6;
/** Inode sizes are powers of two from 128 up to the block size. */
const MIN_INODE_SIZE = 128;
const GOOD_OLD_REV = 0;
const GOOD_OLD_FIRST_INO = 11;

export interface ExtGeometry {
  blockSize: number;
  blocksCount: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodesCount: number;
  inodeSize: number;
  groupCount: number;
  descSize: number;
  incompat: number;
  roCompat: number;
  compat: number;
  firstMetaBg: number;
  metadataCsum: boolean;
  /** crc32c of the UUID (or s_checksum_seed): the seed every metadata checksum starts from. */
  csumSeed: number;
}

export function parseSuperblock(sb: Uint8Array, device: string, deviceSize: number, warnings: string[]): ExtGeometry {
  const s = SUPERBLOCK.parse(sb, { file: device, base: SUPERBLOCK_OFFSET });
  const at = (field: keyof typeof SUPERBLOCK.fields) => ({ file: device, field: `s_${field}`, offset: SUPERBLOCK_OFFSET + SUPERBLOCK.offsetOf(field) });
  if (s.magic !== EXT_MAGIC) throw new CorruptImageError(`not an ext2/3/4 filesystem (magic 0x${s.magic.toString(16)})`, at('magic'));
  const unknown = s.featureIncompat & ~INCOMPAT_READABLE;
  if (unknown) {
    const names: string[] = [];
    for (let bit = 0; bit < 32; bit++) {
      const f = 2 ** bit;
      if (unknown & f) names.push(INCOMPAT_NAMES[f] ?? `unknown incompat bit ${bit}`);
    }
    throw new UnsupportedFeatureError(`cannot read this ext filesystem: unsupported incompatible feature${names.length > 1 ? 's' : ''} ${names.join(', ')}`, at('featureIncompat'));
  }
  inRange(s.logBlockSize, 0, MAX_LOG_BLOCK_SIZE, at('logBlockSize'));
  const blockSize = 1024 << s.logBlockSize;
  const is64 = (s.featureIncompat & INCOMPAT.BIT64) !== 0;
  const blocksCount = s.blocksCountLo + (is64 ? s.blocksCountHi * 2 ** 32 : 0);
  inRange(blocksCount, 1, Math.floor(Number.MAX_SAFE_INTEGER / blockSize), at('blocksCountLo'));
  inRange(s.firstDataBlock, 0, blockSize === 1024 ? 1 : 0, at('firstDataBlock'));
  // A group's bitmaps are one block each: at most 8 * blockSize clusters or inodes per group; a
  // cluster is one block unless bigalloc makes it up to 2^16 blocks (s_log_cluster_size).
  const clusterBlocks = s.featureRoCompat & RO_COMPAT.BIGALLOC ? 2 ** inRange(s.logClusterSize - s.logBlockSize, 0, 16, at('logClusterSize')) : 1;
  inRange(s.blocksPerGroup, 8, 8 * blockSize * clusterBlocks, at('blocksPerGroup'));
  inRange(s.inodesPerGroup, 1, 8 * blockSize, at('inodesPerGroup'));
  const inodeSize = s.revLevel === GOOD_OLD_REV ? MIN_INODE_SIZE : s.inodeSize;
  if (!isPowerOfTwo(inodeSize) || inodeSize < MIN_INODE_SIZE || inodeSize > blockSize) {
    throw new CorruptImageError(`inode size ${inodeSize} is not a power of two in ${MIN_INODE_SIZE}..${blockSize}`, at('inodeSize'));
  }
  const groupCount = Math.ceil((blocksCount - s.firstDataBlock) / s.blocksPerGroup);
  if (groupCount < 1 || s.inodesCount > groupCount * s.inodesPerGroup) {
    throw new CorruptImageError(`s_inodes_count ${s.inodesCount} exceeds ${groupCount} groups of ${s.inodesPerGroup} inodes`, at('inodesCount'));
  }
  const descSize = is64 ? s.descSize : 32;
  if (is64 && (!isPowerOfTwo(descSize) || descSize < 64 || descSize > 1024)) {
    throw new CorruptImageError(`group descriptor size ${descSize} is not a power of two in 64..1024`, at('descSize'));
  }
  const metadataCsum = (s.featureRoCompat & RO_COMPAT.METADATA_CSUM) !== 0;
  const csumSeed = s.featureIncompat & INCOMPAT.CSUM_SEED ? s.checksumSeed : crc32cRaw(0xffffffff, s.uuid);
  if (metadataCsum && crc32cRaw(0xffffffff, sb.subarray(0, 0x3fc)) !== s.checksum) {
    warnings.push(`${device}: superblock checksum mismatch (metadata_csum)`);
  }
  if (blocksCount * blockSize > deviceSize) {
    warnings.push(`${device}: the filesystem claims ${blocksCount * blockSize} bytes but the device has ${deviceSize}; reads past the end will fail`);
  }
  if (s.featureIncompat & INCOMPAT.RECOVER) {
    warnings.push(
      `${device}: the journal needs recovery (the filesystem was not cleanly unmounted); read without replaying it, as debugfs does, so recent changes may be missing`,
    );
  }
  if (s.revLevel !== GOOD_OLD_REV && s.firstIno < GOOD_OLD_FIRST_INO) {
    throw new CorruptImageError(`first non-reserved inode ${s.firstIno} is below ${GOOD_OLD_FIRST_INO}`, at('firstIno'));
  }
  return {
    blockSize,
    blocksCount,
    firstDataBlock: s.firstDataBlock,
    blocksPerGroup: s.blocksPerGroup,
    inodesPerGroup: s.inodesPerGroup,
    inodesCount: s.inodesCount,
    inodeSize,
    groupCount,
    descSize,
    incompat: s.featureIncompat,
    roCompat: s.featureRoCompat,
    compat: s.featureCompat,
    firstMetaBg: s.firstMetaBg,
    metadataCsum,
    csumSeed,
  };
}

/** Groups 0, 1 and powers of 3, 5 and 7 keep a superblock backup under sparse_super (ext4 super.rst "sparse_super"). */
export function groupHasSuper(group: number, roCompat: number): boolean {
  if (!(roCompat & 0x1) || group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < group) p *= base;
    if (p === group) return true;
  }
  return false;
}

/** The block holding group `g`'s descriptor and the descriptor's offset in it (libext2fs ext2fs_descriptor_block_loc2). */
export function descriptorLocation(geo: ExtGeometry, g: number): { block: number; offset: number } {
  const perBlock = geo.blockSize / geo.descSize;
  const index = Math.floor(g / perBlock);
  const offset = (g % perBlock) * geo.descSize;
  // The superblock's own block: 1 with 1 KiB blocks, even under bigalloc where s_first_data_block is 0.
  const sbBlock = geo.blockSize === 1024 ? 1 : 0;
  if (!(geo.incompat & INCOMPAT.META_BG) || index < geo.firstMetaBg) return { block: sbBlock + 1 + index, offset };
  const first = index * perBlock;
  const groupStart = Math.max(geo.firstDataBlock + first * geo.blocksPerGroup, sbBlock);
  return { block: groupStart + (groupHasSuper(first, geo.roCompat) ? 1 : 0), offset };
}
