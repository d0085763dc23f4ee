/** An ext2/3/4 filesystem as an FsVolume: inodes by number, directories, symlinks and file data. */
import { CorruptImageError, LimitExceededError } from '../../../errors.js';
import { LruCache } from '../../../formats/shared/lru.js';
import { extKind } from '../../probes/ext.js';
import type { BlockView } from '../../view.js';
import type { DirEntry, FsVolume, Stat } from '../types.js';
import { mapRange, type MapContext } from './blockmap.js';
import { inlineXattr, parseDirBlock, type RawDirEntry } from './dir.js';
import { fileTypeOfMode, I_BLOCK_SIZE, INODE_FLAGS, parseInode, ROOT_INO, type ExtInode } from './inode.js';
import { descriptorLocation, INCOMPAT, parseSuperblock, SUPERBLOCK_OFFSET, type ExtGeometry } from './superblock.js';

/** Metadata blocks kept (indirect blocks, extent nodes, directory blocks, inode-table blocks). */
const BLOCK_CACHE = 256;
const INODE_CACHE = 1024;
/** Entries one directory may hold here: above the biggest real directories (mail spools), and a bound on the memory of one readdir. */
export const MAX_DIR_ENTRIES = 1_000_000;
/** A directory larger than this is refused rather than walked (a corrupt i_size would make us read a whole disk). */
export const MAX_DIR_BYTES = 2 ** 31;
/** Blocks mapped per step when walking a directory. */
const DIR_BATCH = 256;
const decoder = new TextDecoder('utf-8');
const encoder = new TextEncoder();

export class ExtVolume implements FsVolume<ExtInode> {
  readonly caseInsensitive = false;
  readonly warnings: string[] = [];
  private readonly blocks = new LruCache<number, Uint8Array>(BLOCK_CACHE);
  private readonly inodes = new LruCache<number, ExtInode>(INODE_CACHE);
  private readonly descriptors = new LruCache<number, number>(INODE_CACHE);
  private readonly map: MapContext;
  private constructor(
    readonly view: BlockView,
    readonly geo: ExtGeometry,
    readonly type: string,
    warnings: string[],
  ) {
    this.warnings.push(...warnings);
    this.map = { geo, device: view.name, warnings: this.warnings, readBlock: (b) => this.readBlock(b) };
  }

  get device(): string {
    return this.view.name;
  }

  /** `type` is blkid's name for it; without one it is decided from the feature flags as blkid does. */
  static async open(view: BlockView, type?: string): Promise<ExtVolume> {
    const warnings: string[] = [];
    const sb = await view.read(SUPERBLOCK_OFFSET, 1024);
    const geo = parseSuperblock(sb, view.name, view.size, warnings);
    const vol = new ExtVolume(view, geo, type ?? extKind(geo.compat, geo.incompat, geo.roCompat, 0) ?? 'ext4', warnings);
    const root = await vol.root();
    if (root.stat.type !== 'directory') throw new CorruptImageError(`the root inode is a ${root.stat.type}, not a directory`, { file: view.name, field: 'inode 2' });
    return vol;
  }

  readBlock(pblk: number): Promise<Uint8Array> {
    return this.blocks.get(pblk, () => this.view.read(pblk * this.geo.blockSize, this.geo.blockSize));
  }

  private inodeTable(group: number): Promise<number> {
    return this.descriptors.get(group, async () => {
      const { block, offset } = descriptorLocation(this.geo, group);
      if (block >= this.geo.blocksCount) throw new CorruptImageError(`group ${group} descriptor lies at block ${block}, past the end`, { file: this.device, field: 'group descriptor' });
      const buf = await this.readBlock(block);
      const d = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const table = d.getUint32(offset + 8, true) + (this.geo.descSize >= 64 ? d.getUint32(offset + 0x28, true) * 2 ** 32 : 0);
      const tableBlocks = Math.ceil((this.geo.inodesPerGroup * this.geo.inodeSize) / this.geo.blockSize);
      if (table < 1 || table + tableBlocks > this.geo.blocksCount) {
        throw new CorruptImageError(`group ${group}: inode table at block ${table} lies outside the filesystem`, { file: this.device, field: 'bg_inode_table', offset: block * this.geo.blockSize + offset + 8 });
      }
      return table;
    });
  }

  /** Byte offset of inode `ino` on the device. */
  async inodeOffset(ino: number): Promise<number> {
    const group = Math.floor((ino - 1) / this.geo.inodesPerGroup);
    return (await this.inodeTable(group)) * this.geo.blockSize + ((ino - 1) % this.geo.inodesPerGroup) * this.geo.inodeSize;
  }

  inode(ino: number): Promise<ExtInode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.geo.inodesCount) {
      return Promise.reject(new CorruptImageError(`inode number ${ino} is outside 1..${this.geo.inodesCount}`, { file: this.device, field: 'inode' }));
    }
    return this.inodes.get(ino, async () => {
      const group = Math.floor((ino - 1) / this.geo.inodesPerGroup);
      const index = (ino - 1) % this.geo.inodesPerGroup;
      const table = await this.inodeTable(group);
      const byte = index * this.geo.inodeSize;
      const block = await this.readBlock(table + Math.floor(byte / this.geo.blockSize));
      const at = byte % this.geo.blockSize;
      const raw = block.slice(at, at + this.geo.inodeSize);
      const offset = table * this.geo.blockSize + byte;
      return parseInode(raw, ino, this.geo, this.device, offset, this.warnings);
    });
  }

  root(): Promise<ExtInode> {
    return this.inode(ROOT_INO);
  }

  stat(node: ExtInode): Stat {
    return node.stat;
  }

  private isInline(node: ExtInode): boolean {
    return (this.geo.incompat & INCOMPAT.INLINE_DATA) !== 0 && (node.flags & INODE_FLAGS.INLINE_DATA) !== 0;
  }

  /** Inline data: i_block's 60 bytes, then the system.data xattr. */
  private inlineData(node: ExtInode): Uint8Array {
    const more = inlineXattr(node.raw, node.extraIsize, this.device, node.ino);
    const all = new Uint8Array(I_BLOCK_SIZE + more.length);
    all.set(node.block);
    all.set(more, I_BLOCK_SIZE);
    return all;
  }

  /** Every entry of a directory, walking its blocks in order; `stop` ends the walk early (lookups). */
  private async walkDir(node: ExtInode, visit: (e: RawDirEntry) => boolean): Promise<void> {
    const ctx = {
      device: this.device,
      ino: node.ino,
      filetype: (this.geo.incompat & INCOMPAT.FILETYPE) !== 0,
      csumSeed: this.geo.metadataCsum ? node.csumSeed : undefined,
      warnings: this.warnings,
    };
    let count = 0;
    const feed = (entries: RawDirEntry[]): boolean => {
      for (const e of entries) {
        if (++count > MAX_DIR_ENTRIES) throw new LimitExceededError(`directory inode ${node.ino} has more than ${MAX_DIR_ENTRIES} entries`, { file: this.device, field: 'directory' });
        if (visit(e)) return true;
      }
      return false;
    };
    if (this.isInline(node)) {
      const data = this.inlineData(node);
      const entries: RawDirEntry[] = [];
      parseDirBlock(data.subarray(4, I_BLOCK_SIZE), { ...ctx, csumSeed: undefined }, 'inline entries', entries);
      const rest = data.subarray(I_BLOCK_SIZE);
      if (rest.length > 0) parseDirBlock(rest, { ...ctx, csumSeed: undefined }, 'inline entries (system.data)', entries);
      feed(entries);
      return;
    }
    if (node.size > MAX_DIR_BYTES) throw new LimitExceededError(`directory inode ${node.ino} is ${node.size} bytes`, { file: this.device, field: 'i_size' });
    const bs = this.geo.blockSize;
    const nblocks = Math.ceil(node.size / bs);
    for (let first = 0; first < nblocks; first += DIR_BATCH) {
      const runs = await mapRange(this.map, node, first, Math.min(DIR_BATCH, nblocks - first));
      for (const run of runs) {
        for (let i = 0; i < run.len; i++) {
          const entries: RawDirEntry[] = [];
          parseDirBlock(await this.readBlock(run.pblk + i), ctx, `block ${run.lblk + i}`, entries);
          if (feed(entries)) return;
        }
      }
    }
  }

  async lookup(dir: ExtInode, name: string): Promise<ExtInode | undefined> {
    const want = encoder.encode(name);
    let found: number | undefined;
    await this.walkDir(dir, (e) => {
      if (e.name.length === want.length && e.name.every((b, i) => b === want[i])) {
        found = e.ino;
        return true;
      }
      return false;
    });
    return found === undefined ? undefined : this.inode(found);
  }

  async list(dir: ExtInode): Promise<DirEntry[]> {
    const raw: RawDirEntry[] = [];
    await this.walkDir(dir, (e) => {
      raw.push(e);
      return false;
    });
    const out: DirEntry[] = [];
    for (const e of raw) {
      const name = decoder.decode(e.name);
      if (name === '.' || name === '..') continue;
      out.push({ name, ino: e.ino, type: e.type ?? fileTypeOfMode((await this.inode(e.ino)).mode) });
    }
    return out;
  }

  async readlink(node: ExtInode): Promise<string> {
    // e2fsprogs' ext2fs_is_fast_symlink: a target shorter than i_block lives in i_block.
    if (this.isInline(node)) return decoder.decode(this.inlineData(node).subarray(0, node.size));
    if (node.size < I_BLOCK_SIZE && !(node.flags & INODE_FLAGS.EXTENTS && node.stat.blocks)) return decoder.decode(node.block.subarray(0, node.size));
    if (node.size > 4096) throw new CorruptImageError(`symlink inode ${node.ino} is ${node.size} bytes, longer than PATH_MAX`, { file: this.device, field: 'i_size' });
    return decoder.decode(await this.readRange(node, 0, node.size));
  }

  /** The mapped runs of logical blocks [first, first+count) (debugfs's `blocks`, for tests and tools). */
  physicalRuns(node: ExtInode, first: number, count: number) {
    return mapRange(this.map, node, first, count);
  }

  async readRange(node: ExtInode, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    if (length === 0) return out;
    if (this.isInline(node)) {
      const data = this.inlineData(node);
      if (offset < data.length) out.set(data.subarray(offset, Math.min(data.length, offset + length)));
      return out;
    }
    const bs = this.geo.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    for (const run of await mapRange(this.map, node, first, last - first + 1)) {
      const from = Math.max(offset, run.lblk * bs);
      const to = Math.min(offset + length, (run.lblk + run.len) * bs);
      if (from >= to) continue;
      const bytes = await this.view.read(run.pblk * bs + (from - run.lblk * bs), to - from);
      out.set(bytes, from - offset);
    }
    return out;
  }
}
