/** A FAT12/16/32 filesystem as an FsVolume: directory entries as nodes, cluster chains as data. */
import { CorruptImageError } from '../../../errors.js';
import { LruCache } from '../../../formats/shared/lru.js';
import type { BlockView } from '../../view.js';
import type { DirEntry, FsVolume, Stat, Timestamp } from '../types.js';
import { parseBootSector, type FatGeometry } from './boot.js';
import { FatTable, type ClusterRun } from './chain.js';
import { LfnState, parseDirEntries, type FatDirEntry } from './dir.js';

/** Spec §6: a directory holds at most 65536 entries of 32 bytes. */
export const MAX_DIR_BYTES = 65536 * 32;

export interface FatNode {
  stat: Stat;
  /** 0 for the FAT12/16 root (its fixed region) and for empty files. */
  firstCluster: number;
  root: boolean;
  entry?: FatDirEntry;
}

/** FAT dates and times are local time with no zone; they are read as UTC, as Linux's default tz=UTC mount does. */
function fatTime(date: number, time = 0, tenths = 0): Timestamp {
  if (date === 0) return { sec: 0, nsec: 0 };
  const ms = Date.UTC(1980 + (date >> 9), ((date >> 5) & 0xf) - 1, date & 0x1f, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2);
  const extra = Math.min(tenths, 199) * 10;
  return { sec: Math.floor(ms / 1000) + Math.floor(extra / 1000), nsec: (extra % 1000) * 1_000_000 };
}

export class FatVolume implements FsVolume<FatNode> {
  readonly caseInsensitive = true;
  readonly warnings: string[] = [];
  readonly type = 'vfat';
  private readonly table: FatTable;
  private readonly chains = new LruCache<string, ClusterRun[]>(128);
  /** Parsed directories by first cluster (0: the FAT12/16 root), so a walk does not re-parse a parent per child. */
  private readonly dirs = new LruCache<number, FatDirEntry[]>(64);
  private readonly rootNode: FatNode;

  private constructor(
    readonly view: BlockView,
    readonly geo: FatGeometry,
  ) {
    this.table = new FatTable(view, geo);
    const zero = { sec: 0, nsec: 0 };
    this.rootNode = {
      root: true,
      firstCluster: geo.rootCluster,
      stat: { ino: 1, type: 'directory', mode: 0o40755, uid: 0, gid: 0, size: 0, nlink: 2, atime: zero, mtime: zero, ctime: zero },
    };
  }

  get device(): string {
    return this.view.name;
  }

  static async open(view: BlockView): Promise<FatVolume> {
    const geo = parseBootSector(await view.read(0, 512), view.name, view.size);
    if (geo.dataOffset + geo.clusterCount * geo.clusterSize > view.size) {
      throw new CorruptImageError(`the FAT data area (${geo.clusterCount} clusters of ${geo.clusterSize} bytes) runs past the device (${view.size} bytes)`, { file: view.name, field: 'BPB_TotSec32' });
    }
    return new FatVolume(view, geo);
  }

  async root(): Promise<FatNode> {
    return this.rootNode;
  }

  stat(node: FatNode): Stat {
    return node.stat;
  }

  private runs(first: number, maxClusters: number, exact: boolean, what: string): Promise<ClusterRun[]> {
    return this.chains.get(`${first}:${maxClusters}:${exact}`, () => this.table.chain(first, maxClusters, exact, what));
  }

  private clusterOffset(c: number): number {
    return this.geo.dataOffset + (c - 2) * this.geo.clusterSize;
  }

  private entries(dir: FatNode): Promise<FatDirEntry[]> {
    return this.dirs.get(dir.root ? -1 : dir.firstCluster, () => this.parseDir(dir));
  }

  private async parseDir(dir: FatNode): Promise<FatDirEntry[]> {
    const out: FatDirEntry[] = [];
    const lfn = new LfnState();
    if (dir.root && this.geo.bits !== 32) {
      const buf = await this.view.read(this.geo.rootOffset, this.geo.rootBytes);
      parseDirEntries(buf, (i) => this.geo.rootOffset + i, out, lfn);
      return out;
    }
    if (dir.firstCluster === 0) return out;
    const what = dir.root ? 'root directory' : `directory ${dir.entry?.name}`;
    const runs = await this.runs(dir.firstCluster, Math.ceil(MAX_DIR_BYTES / this.geo.clusterSize), false, what);
    for (const run of runs) {
      const start = this.clusterOffset(run.cluster);
      const buf = await this.view.read(start, run.count * this.geo.clusterSize);
      if (!parseDirEntries(buf, (i) => start + i, out, lfn)) break;
    }
    return out;
  }

  private node(e: FatDirEntry): FatNode {
    const mtime = fatTime(e.mdate, e.mtime);
    // Linux gives files 0777 & ~umask (022), and read-only files lose their write bits.
    const perm = e.directory ? 0o755 : e.readOnly ? 0o555 : 0o755;
    return {
      root: false,
      firstCluster: e.firstCluster,
      entry: e,
      stat: {
        ino: e.position / 32,
        type: e.directory ? 'directory' : 'file',
        mode: (e.directory ? 0o40000 : 0o100000) | perm,
        uid: 0,
        gid: 0,
        size: e.directory ? 0 : e.size,
        nlink: e.directory ? 2 : 1,
        atime: fatTime(e.adate),
        mtime,
        ctime: mtime,
        crtime: fatTime(e.crtime.date, e.crtime.time, e.crtime.tenths),
      },
    };
  }

  async lookup(dir: FatNode, name: string): Promise<FatNode | undefined> {
    const want = name.toUpperCase();
    const e = (await this.entries(dir)).find((x) => x.name.toUpperCase() === want || x.shortName.toUpperCase() === want);
    if (!e) return undefined;
    const node = this.node(e);
    // A directory's size is its clusters, as Linux's vfat reports it.
    if (e.directory && e.firstCluster !== 0) {
      const runs = await this.runs(e.firstCluster, Math.ceil(MAX_DIR_BYTES / this.geo.clusterSize), false, `directory ${e.name}`);
      node.stat.size = runs.reduce((n, r) => n + r.count, 0) * this.geo.clusterSize;
    }
    return node;
  }

  async list(dir: FatNode): Promise<DirEntry[]> {
    return (await this.entries(dir)).map((e) => ({ name: e.name, ino: e.position / 32, type: e.directory ? 'directory' : 'file' }));
  }

  async readlink(): Promise<string> {
    throw new CorruptImageError('FAT has no symbolic links', { file: this.device });
  }

  async readRange(node: FatNode, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const cs = this.geo.clusterSize;
    const needed = Math.ceil(node.stat.size / cs);
    if (node.firstCluster === 0) throw new CorruptImageError(`${node.entry?.name}: ${node.stat.size} bytes but no first cluster`, { file: this.device, field: 'DIR_FstClusLO' });
    const runs = await this.runs(node.firstCluster, needed, true, `file ${node.entry?.name}`);
    let lc = 0;
    for (const run of runs) {
      const runStart = lc * cs;
      const runEnd = (lc + run.count) * cs;
      lc += run.count;
      const from = Math.max(offset, runStart);
      const to = Math.min(offset + length, runEnd);
      if (from >= to) continue;
      out.set(await this.view.read(this.clusterOffset(run.cluster) + (from - runStart), to - from), from - offset);
    }
    return out;
  }
}
