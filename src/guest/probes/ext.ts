/**
 * ext2/ext3/ext4 and external journals (jbd), decided by feature flags exactly as libblkid's
 * superblocks/ext.c does, so TYPE matches blkid even for unusual feature mixes.
 */
import { cString, dv, isZero, readAt, uuidText } from './bytes.js';
import type { Probe, ProbeHit } from './types.js';

const SB_OFFSET = 1024;
const EXT_MAGIC = 0xef53;
const COMPAT_HAS_JOURNAL = 0x0004;
const INCOMPAT_FILETYPE = 0x0002;
const INCOMPAT_RECOVER = 0x0004;
const INCOMPAT_JOURNAL_DEV = 0x0008;
const INCOMPAT_META_BG = 0x0010;
const INCOMPAT_64BIT = 0x0080;
const RO_COMPAT_SUPP = 0x0001 | 0x0002 | 0x0004; // sparse_super, large_file, btree_dir: all ext2 and ext3 know
const EXT2_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_META_BG;
const EXT3_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
/** s_flags: "test_fs", filesystems meant for in-development code (ext4dev). */
const FLAGS_TEST_FILESYS = 0x0004;
/** s_log_block_size above 6 (64 KiB blocks) is no ext filesystem the kernel mounts. */
const MAX_LOG_BLOCK = 6;

export type ExtKind = 'ext2' | 'ext3' | 'ext4' | 'ext4dev' | 'jbd';

/** blkid's decision, from the three feature words and s_flags. */
export function extKind(compat: number, incompat: number, roCompat: number, flags: number): ExtKind | undefined {
  if (incompat & INCOMPAT_JOURNAL_DEV) return 'jbd';
  if (flags & FLAGS_TEST_FILESYS) return 'ext4dev';
  const ext3Unsupported = (roCompat & ~RO_COMPAT_SUPP) !== 0 || (incompat & ~EXT3_INCOMPAT_SUPP) !== 0;
  if (ext3Unsupported) return 'ext4';
  if (compat & COMPAT_HAS_JOURNAL) return 'ext3';
  const ext2Unsupported = (roCompat & ~RO_COMPAT_SUPP) !== 0 || (incompat & ~EXT2_INCOMPAT_SUPP) !== 0;
  // No journal but the needs_recovery flag: ext2 does not know it, ext3 needs a journal, and ext4
  // wants a feature ext3 lacks; blkid names it nothing, and so do we.
  return ext2Unsupported ? undefined : 'ext2';
}

export const extProbe: Probe = {
  name: 'ext',
  async probe(view) {
    const sb = await readAt(view, SB_OFFSET, 1024);
    if (!sb) return undefined;
    const d = dv(sb);
    if (d.getUint16(0x38, true) !== EXT_MAGIC) return undefined;
    const logBlock = d.getUint32(0x18, true);
    if (logBlock > MAX_LOG_BLOCK) return undefined;
    const compat = d.getUint32(0x5c, true);
    const incompat = d.getUint32(0x60, true);
    const roCompat = d.getUint32(0x64, true);
    const kind = extKind(compat, incompat, roCompat, d.getUint32(0x160, true));
    if (!kind) return undefined;
    const blockSize = 1024 << logBlock;
    const blocks = d.getUint32(0x04, true) + (incompat & INCOMPAT_64BIT ? d.getUint32(0x150, true) * 2 ** 32 : 0);
    const uuid = uuidText(sb.subarray(0x68, 0x78));
    const label = cString(sb.subarray(0x78, 0x88));
    const hit: ProbeHit = {
      score: 100,
      type: kind,
      usage: kind === 'jbd' ? 'other' : 'filesystem',
      uuid,
      ...(label ? { label } : {}),
      version: `${d.getUint32(0x4c, true)}.${d.getUint16(0x3e, true)}`,
      blockSize,
      size: blocks * blockSize,
      extra: {},
    };
    if (kind === 'ext3') hit.extra!.SEC_TYPE = 'ext2';
    if (kind === 'jbd') hit.extra!.LOGUUID = uuid;
    const journalUuid = sb.subarray(0xd0, 0xe0);
    if (compat & COMPAT_HAS_JOURNAL && !isZero(journalUuid)) hit.extra!.EXT_JOURNAL = uuidText(journalUuid);
    return hit;
  },
};
