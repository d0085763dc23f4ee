/**
 * Directory entries (ext4 directory.rst): linear blocks of ext4_dir_entry_2, which is also how an
 * htree directory reads — its index blocks look like one empty entry spanning the block, so a
 * linear walk sees every name, as debugfs's `ls` does. Inline directories keep the parent inode in
 * their first 4 bytes and entries after it.
 */
import { warn } from '../warnings.js';
import { CorruptImageError } from '../../../errors.js';
import type { FileType } from '../types.js';
import { crc32cRaw } from '../../../formats/shared/crc32c.js';

export interface RawDirEntry {
  ino: number;
  name: Uint8Array;
  /** From the entry's file_type byte when the filesystem has the filetype feature. */
  type: FileType | undefined;
}

const DIRENT_TYPES: (FileType | undefined)[] = [undefined, 'file', 'directory', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];
/** The fake entry at the end of a leaf block that holds its checksum (ext4_dir_entry_tail). */
const TAIL_SIZE = 12;
const TAIL_FT = 0xde;

export interface DirBlockContext {
  device: string;
  ino: number;
  filetype: boolean;
  /** Seed for the leaf-block checksum, when metadata_csum is on. */
  csumSeed?: number;
  warnings: string[];
}

/** rec_len of 64 KiB blocks does not fit 16 bits (ext4_rec_len_from_disk). */
function recLen(v: number, blockSize: number): number {
  return (v === 65535 || v === 0) && blockSize === 65536 ? 65536 : v;
}

/** Entries of one directory block (or an inline area); `where` names it in errors. */
export function parseDirBlock(buf: Uint8Array, ctx: DirBlockContext, where: string, out: RawDirEntry[]): void {
  const d = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (ctx.csumSeed !== undefined) verifyLeaf(buf, d, ctx, where);
  let at = 0;
  while (at + 8 <= buf.length) {
    const ino = d.getUint32(at, true);
    const len = recLen(d.getUint16(at + 4, true), buf.length);
    const nameLen = ctx.filetype ? d.getUint8(at + 6) : d.getUint16(at + 6, true);
    if (len < 8 || len % 4 !== 0 || at + len > buf.length || (ino !== 0 && 8 + nameLen > len)) {
      throw new CorruptImageError(`directory inode ${ctx.ino}: ${where}: bad entry at byte ${at} (rec_len ${len}, name_len ${nameLen})`, {
        file: ctx.device,
        field: 'rec_len',
        offset: at,
      });
    }
    if (ino !== 0 && nameLen > 0) {
      out.push({ ino, name: buf.subarray(at + 8, at + 8 + nameLen), type: ctx.filetype ? DIRENT_TYPES[d.getUint8(at + 7)] : undefined });
    }
    at += len;
  }
}

function verifyLeaf(buf: Uint8Array, d: DataView, ctx: DirBlockContext, where: string): void {
  const t = buf.length - TAIL_SIZE;
  // Only leaf blocks carry the tail; htree index blocks have their own (dx_tail), checked by nobody here.
  if (t < 0 || d.getUint32(t, true) !== 0 || d.getUint16(t + 4, true) !== TAIL_SIZE || d.getUint8(t + 6) !== 0 || d.getUint8(t + 7) !== TAIL_FT) return;
  if (crc32cRaw(ctx.csumSeed!, buf.subarray(0, t)) !== d.getUint32(t + 8, true)) {
    warn(ctx.warnings, `${ctx.device}: directory inode ${ctx.ino}: ${where} checksum mismatch (metadata_csum)`);
  }
}

/** The value of the in-inode extended attribute `system.data` (inline data past i_block), or an empty array. */
export function inlineXattr(raw: Uint8Array, extraIsize: number, device: string, ino: number): Uint8Array {
  const start = 128 + extraIsize;
  if (raw.length <= 128 || start + 4 > raw.length) return new Uint8Array(0);
  const d = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (d.getUint32(start, true) !== 0xea020000) return new Uint8Array(0);
  const base = start + 4;
  let at = base;
  const bad = (what: string) => new CorruptImageError(`inode ${ino}: in-inode extended attribute: ${what}`, { file: device, field: 'ext4_xattr_entry', offset: at });
  // Entries are 16 bytes plus the name rounded up to 4; the list ends with 4 zero bytes.
  while (at + 4 <= raw.length && d.getUint32(at, true) !== 0) {
    if (at + 16 > raw.length) throw bad('entry runs past the inode');
    const nameLen = d.getUint8(at);
    const index = d.getUint8(at + 1);
    const valueOffs = d.getUint16(at + 2, true);
    const valueInum = d.getUint32(at + 4, true);
    const valueSize = d.getUint32(at + 8, true);
    if (at + 16 + nameLen > raw.length) throw bad('name runs past the inode');
    const name = new TextDecoder().decode(raw.subarray(at + 16, at + 16 + nameLen));
    // name_index 7 is the "system." prefix (ext4 xattr.h EXT4_XATTR_INDEX_SYSTEM).
    if (index === 7 && name === 'data') {
      if (valueInum !== 0) throw bad('system.data in an EA inode is not supported');
      if (base + valueOffs + valueSize > raw.length) throw bad(`value of ${valueSize} bytes at ${valueOffs} runs past the inode`);
      return raw.subarray(base + valueOffs, base + valueOffs + valueSize);
    }
    at += (16 + nameLen + 3) & ~3;
  }
  return new Uint8Array(0);
}
