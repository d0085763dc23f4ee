/**
 * Logical → physical block mapping of an inode: extent trees (ext4 ifork.rst "Extent Tree") and the
 * classic direct/indirect map (ext2/3, "Direct/Indirect Block Addressing"). Both return only the
 * mapped runs of a range; whatever is not returned is a hole and reads as zeros, as are
 * uninitialized extents (fallocated, never written).
 */
import { warn } from '../warnings.js';
import { CorruptImageError, LimitExceededError } from '../../../errors.js';
import { crc32cRaw } from '../../../formats/shared/crc32c.js';
import { INODE_FLAGS, type ExtInode } from './inode.js';
import type { ExtGeometry } from './superblock.js';

export interface Run {
  lblk: number;
  pblk: number;
  len: number;
}

export interface MapContext {
  geo: ExtGeometry;
  device: string;
  warnings: string[];
  /** One filesystem block, cached by the volume. */
  readBlock(pblk: number): Promise<Uint8Array>;
}

const EXTENT_MAGIC = 0xf30a;
/** The kernel's EXT4_MAX_EXTENT_DEPTH: a deeper tree is corrupt, and the bound stops a cycle of index blocks. */
export const MAX_EXTENT_DEPTH = 5;
/** Tree nodes visited for one read; a read covers at most MAX_CHUNK bytes, which never needs this many. */
const MAX_NODES_PER_MAP = 65_536;
/** Above 32768, ee_len marks an uninitialized extent of ee_len - 32768 blocks. */
const EXT_INIT_MAX_LEN = 32768;
const ADDR_PER_INODE = 12;

export function mapRange(ctx: MapContext, inode: ExtInode, first: number, count: number): Promise<Run[]> {
  return inode.flags & INODE_FLAGS.EXTENTS ? mapExtents(ctx, inode, first, count) : mapIndirect(ctx, inode, first, count);
}

function checkPhysical(ctx: MapContext, ino: number, pblk: number, len: number, what: string): void {
  if (pblk < ctx.geo.firstDataBlock || pblk + len > ctx.geo.blocksCount) {
    throw new CorruptImageError(`inode ${ino}: ${what} points at blocks ${pblk}..${pblk + len - 1}, outside the filesystem (${ctx.geo.blocksCount} blocks)`, {
      file: ctx.device,
      field: what,
    });
  }
}

async function mapExtents(ctx: MapContext, inode: ExtInode, first: number, count: number): Promise<Run[]> {
  const runs: Run[] = [];
  const end = first + count;
  let visited = 0;
  const visit = async (node: Uint8Array, expectDepth: number | undefined, lo: number, hi: number, where: string): Promise<void> => {
    if (++visited > MAX_NODES_PER_MAP) throw new LimitExceededError(`inode ${inode.ino}: extent tree walk visits more than ${MAX_NODES_PER_MAP} nodes`, { file: ctx.device, field: 'extent tree' });
    const d = new DataView(node.buffer, node.byteOffset, node.byteLength);
    const bad = (what: string) => new CorruptImageError(`inode ${inode.ino}: ${where}: ${what}`, { file: ctx.device, field: 'ext4_extent_header' });
    if (d.getUint16(0, true) !== EXTENT_MAGIC) throw bad(`bad extent header magic 0x${d.getUint16(0, true).toString(16)}`);
    const entries = d.getUint16(2, true);
    const max = d.getUint16(4, true);
    const depth = d.getUint16(6, true);
    if (12 + 12 * max > node.length || entries > max) throw bad(`${entries} entries of at most ${max} do not fit in ${node.length} bytes`);
    if (depth > MAX_EXTENT_DEPTH) throw bad(`depth ${depth} is more than ${MAX_EXTENT_DEPTH}`);
    if (expectDepth !== undefined && depth !== expectDepth) throw bad(`depth ${depth} where ${expectDepth} was expected`);
    if (depth === 0) {
      for (let i = 0; i < entries; i++) {
        const at = 12 + 12 * i;
        const lblk = d.getUint32(at, true);
        let len = d.getUint16(at + 4, true);
        if (len > EXT_INIT_MAX_LEN) continue; // uninitialized: reads as zeros
        const pblk = d.getUint16(at + 6, true) * 2 ** 32 + d.getUint32(at + 8, true);
        const from = Math.max(lblk, first, lo);
        const to = Math.min(lblk + len, end, hi);
        if (len === 0 || from >= to) continue;
        checkPhysical(ctx, inode.ino, pblk, len, 'extent');
        len = to - from;
        runs.push({ lblk: from, pblk: pblk + (from - lblk), len });
      }
      return;
    }
    let prev = -1;
    for (let i = 0; i < entries; i++) {
      const at = 12 + 12 * i;
      const key = d.getUint32(at, true);
      if (key <= prev && i > 0) throw bad(`index keys are not increasing (${key} after ${prev})`);
      prev = key;
      const next = i + 1 < entries ? d.getUint32(at + 12, true) : hi;
      const from = Math.max(key, lo);
      const to = Math.min(next, hi);
      if (from >= to || to <= first || from >= end) continue;
      const leaf = d.getUint16(at + 8, true) * 2 ** 32 + d.getUint32(at + 4, true);
      checkPhysical(ctx, inode.ino, leaf, 1, 'extent index');
      const child = await ctx.readBlock(leaf);
      verifyTail(ctx, inode, child, leaf);
      await visit(child, depth - 1, from, to, `extent block ${leaf}`);
    }
  };
  await visit(inode.block, undefined, 0, 2 ** 32, 'extent root');
  return runs.sort((a, b) => a.lblk - b.lblk);
}

/** ext4_extent_tail: crc32c over the block up to the tail, which sits right after eh_max entries. */
function verifyTail(ctx: MapContext, inode: ExtInode, block: Uint8Array, pblk: number): void {
  if (!ctx.geo.metadataCsum) return;
  const max = new DataView(block.buffer, block.byteOffset, block.byteLength).getUint16(4, true);
  const tail = 12 + 12 * max;
  if (tail + 4 > block.length) return;
  const stored = new DataView(block.buffer, block.byteOffset + tail, 4).getUint32(0, true);
  if (crc32cRaw(inode.csumSeed, block.subarray(0, tail)) !== stored) {
    warn(ctx.warnings, `${ctx.device}: inode ${inode.ino}: extent block ${pblk} checksum mismatch (metadata_csum)`);
  }
}

/** The direct/indirect map: 12 direct pointers, then single, double and triple indirect blocks. */
async function mapIndirect(ctx: MapContext, inode: ExtInode, first: number, count: number): Promise<Run[]> {
  const per = ctx.geo.blockSize / 4;
  const iblock = new DataView(inode.block.buffer, inode.block.byteOffset, 60);
  const limits = [ADDR_PER_INODE, per, per * per, per * per * per];
  const runs: Run[] = [];
  const entry = async (blk: number, index: number, what: string): Promise<number> => {
    checkPhysical(ctx, inode.ino, blk, 1, what);
    const b = await ctx.readBlock(blk);
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(index * 4, true);
  };
  const lookup = async (lblk: number): Promise<number> => {
    if (lblk < ADDR_PER_INODE) return iblock.getUint32(lblk * 4, true);
    let rel = lblk - ADDR_PER_INODE;
    for (let level = 1; level <= 3; level++) {
      if (rel < limits[level]) {
        let blk = iblock.getUint32((ADDR_PER_INODE + level - 1) * 4, true);
        for (let l = level; l >= 1 && blk !== 0; l--) {
          const span = l === 1 ? 1 : limits[l - 1];
          blk = await entry(blk, Math.floor(rel / span) % per, ['', 'indirect block', 'double indirect block', 'triple indirect block'][l]);
          rel %= span;
        }
        return blk;
      }
      rel -= limits[level];
    }
    return 0; // past what the map can address: nothing is there
  };
  for (let lblk = first; lblk < first + count; lblk++) {
    const pblk = await lookup(lblk);
    if (pblk === 0) continue;
    checkPhysical(ctx, inode.ino, pblk, 1, 'data block');
    const last = runs[runs.length - 1];
    if (last && last.lblk + last.len === lblk && last.pblk + last.len === pblk) last.len++;
    else runs.push({ lblk, pblk, len: 1 });
  }
  return runs;
}
