/** ext inodes (kernel Documentation/filesystems/ext4/inodes.rst): fields, times, mode, checksum. */
import { warn } from '../warnings.js';
import { CorruptImageError } from '../../../errors.js';
import { bytes, struct, u16le, u32le } from '../../../formats/shared/struct.js';
import type { FileType, Stat, Timestamp } from '../types.js';
import { crc32cRaw, crc32cU32 } from '../../../formats/shared/crc32c.js';
import { RO_COMPAT, type ExtGeometry } from './superblock.js';

export const INODE = struct('ext inode', 128, {
  mode: u16le(0x00),
  uidLo: u16le(0x02),
  sizeLo: u32le(0x04),
  atime: u32le(0x08),
  ctime: u32le(0x0c),
  mtime: u32le(0x10),
  gidLo: u16le(0x18),
  linksCount: u16le(0x1a),
  blocksLo: u32le(0x1c),
  flags: u32le(0x20),
  block: bytes(0x28, 60),
  generation: u32le(0x64),
  sizeHigh: u32le(0x6c),
  blocksHigh: u16le(0x74),
  uidHigh: u16le(0x78),
  gidHigh: u16le(0x7a),
  checksumLo: u16le(0x7c),
});

export const INODE_FLAGS = { INDEX: 0x1000, HUGE_FILE: 0x40000, EXTENTS: 0x80000, INLINE_DATA: 0x10000000 } as const;
export const ROOT_INO = 2;
/** i_block is 15 32-bit words: the block map, the extent tree root, an inline file's first bytes or a fast symlink. */
export const I_BLOCK_SIZE = 60;

export interface ExtInode {
  ino: number;
  /** The whole on-disk inode (s_inode_size bytes): inline data's xattrs live past byte 128. */
  raw: Uint8Array;
  mode: number;
  flags: number;
  size: number;
  block: Uint8Array;
  generation: number;
  /** i_extra_isize: how much of the large-inode area is fields (the rest holds in-inode xattrs). */
  extraIsize: number;
  stat: Stat;
  /** Seed of this inode's metadata checksums (extent blocks, directory blocks). */
  csumSeed: number;
}

const TYPES: Record<number, FileType> = {
  0x1: 'fifo', 0x2: 'chardev', 0x4: 'directory', 0x6: 'blockdev', 0x8: 'file', 0xa: 'symlink', 0xc: 'socket',
};
export const fileTypeOfMode = (mode: number): FileType => TYPES[mode >>> 12] ?? 'unknown';

/** A 32-bit seconds field plus the large-inode "extra" word: 2 epoch bits above bit 31, 30 bits of nanoseconds (inodes.rst "Inode Timestamps"). */
function time(d: DataView, at: number, extraAt: number | undefined): Timestamp {
  const lo = d.getInt32(at, true);
  if (extraAt === undefined) return { sec: lo, nsec: 0 };
  const extra = d.getUint32(extraAt, true);
  return { sec: lo + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
}

export function parseInode(raw: Uint8Array, ino: number, geo: ExtGeometry, device: string, offset: number, warnings: string[]): ExtInode {
  const i = INODE.parse(raw, { file: device, base: offset });
  const d = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const large = raw.length > 128;
  const extraIsize = large ? d.getUint16(0x80, true) : 0;
  if (large && (extraIsize > raw.length - 128 || extraIsize % 4 !== 0)) {
    throw new CorruptImageError(`inode ${ino}: i_extra_isize ${extraIsize} does not fit in a ${raw.length}-byte inode`, { file: device, field: 'i_extra_isize', offset: offset + 0x80 });
  }
  // A field of the large-inode area exists when i_extra_isize covers it.
  const has = (fieldEnd: number): number | undefined => (large && 128 + extraIsize >= fieldEnd ? fieldEnd - 4 : undefined);
  const size = i.sizeLo + i.sizeHigh * 2 ** 32;
  if (size > Number.MAX_SAFE_INTEGER) throw new CorruptImageError(`inode ${ino}: size ${size} is larger than any supported file`, { file: device, field: 'i_size_high', offset: offset + 0x6c });
  const hugeUnits = geo.roCompat & RO_COMPAT.HUGE_FILE && i.flags & INODE_FLAGS.HUGE_FILE ? geo.blockSize / 512 : 1;
  const csumSeed = crc32cU32(crc32cU32(geo.csumSeed, ino), i.generation);
  if (geo.metadataCsum) verifyInodeChecksum(raw, ino, csumSeed, has(0x84) !== undefined, device, warnings);
  const crtime = has(0x94);
  return {
    ino,
    raw,
    mode: i.mode,
    flags: i.flags,
    size,
    block: i.block,
    generation: i.generation,
    extraIsize,
    csumSeed,
    stat: {
      ino,
      type: fileTypeOfMode(i.mode),
      mode: i.mode,
      uid: i.uidLo | (i.uidHigh << 16),
      gid: i.gidLo | (i.gidHigh << 16),
      size,
      nlink: i.linksCount,
      atime: time(d, 0x08, has(0x90)),
      ctime: time(d, 0x0c, has(0x88)),
      mtime: time(d, 0x10, has(0x8c)),
      ...(crtime !== undefined ? { crtime: time(d, crtime, has(0x98)) } : {}),
      blocks: (i.blocksLo + (geo.roCompat & RO_COMPAT.HUGE_FILE ? i.blocksHigh * 2 ** 32 : 0)) * hugeUnits,
    },
  };
}

/** crc32c(seed(ino, generation), inode with i_checksum_lo/hi zeroed); only the low 16 bits are stored in a 128-byte inode (inodes.rst). */
function verifyInodeChecksum(raw: Uint8Array, ino: number, seed: number, hasHi: boolean, device: string, warnings: string[]): void {
  const copy = raw.slice();
  const d = new DataView(copy.buffer);
  const stored = d.getUint16(0x7c, true) | (hasHi ? d.getUint16(0x82, true) << 16 : 0);
  d.setUint16(0x7c, 0, true);
  if (hasHi) d.setUint16(0x82, 0, true);
  let crc = crc32cRaw(seed, copy);
  if (!hasHi) crc &= 0xffff;
  if (crc >>> 0 !== stored >>> 0) warn(warnings, `${device}: inode ${ino} checksum mismatch (metadata_csum): stored 0x${(stored >>> 0).toString(16)}, computed 0x${(crc >>> 0).toString(16)}`);
}
