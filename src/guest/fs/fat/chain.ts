/**
 * FAT entries and cluster chains. A chain is followed until its end-of-chain mark and no further
 * than the caller's bound (a file's size, a directory's 2 MiB maximum); a cluster met twice is a
 * loop and an error, never a hang.
 */
import { CorruptImageError, LimitExceededError } from '../../../errors.js';
import { LruCache } from '../../../formats/shared/lru.js';
import type { BlockView } from '../../view.js';
import type { FatGeometry } from './boot.js';

export interface ClusterRun {
  cluster: number;
  count: number;
}

const FAT_BLOCK = 4096;
/** Chains longer than this remember visited clusters in a bitmap instead of a Set. */
const SET_LIMIT = 65_536;

export class FatTable {
  private readonly blocks = new LruCache<number, Uint8Array>(64);
  private readonly eoc: number;
  private readonly bad: number;
  constructor(
    private readonly view: BlockView,
    private readonly geo: FatGeometry,
  ) {
    this.eoc = geo.bits === 12 ? 0xff8 : geo.bits === 16 ? 0xfff8 : 0x0ffffff8;
    this.bad = this.eoc - 1;
  }

  private async byte(off: number): Promise<number> {
    const b = Math.floor(off / FAT_BLOCK);
    const start = this.geo.fatOffset + b * FAT_BLOCK;
    const block = await this.blocks.get(b, () => this.view.read(start, Math.min(FAT_BLOCK, this.geo.fatOffset + this.geo.fatBytes - start)));
    return block[off - b * FAT_BLOCK];
  }

  /** The FAT entry of cluster n. */
  async entry(n: number): Promise<number> {
    if (this.geo.bits === 12) {
      const off = n + (n >> 1);
      const v = (await this.byte(off)) | ((await this.byte(off + 1)) << 8);
      return n & 1 ? v >> 4 : v & 0xfff;
    }
    if (this.geo.bits === 16) return (await this.byte(n * 2)) | ((await this.byte(n * 2 + 1)) << 8);
    const off = n * 4;
    const v = (await this.byte(off)) | ((await this.byte(off + 1)) << 8) | ((await this.byte(off + 2)) << 16) | ((await this.byte(off + 3)) << 24);
    return (v >>> 0) & 0x0fffffff;
  }

  isData(c: number): boolean {
    return c >= 2 && c <= this.geo.clusterCount + 1;
  }

  /**
   * The chain from `first` as runs of consecutive clusters, at most `maxClusters` long. `exact`
   * demands at least that many (a file's size); otherwise exceeding it is a limit error.
   */
  async chain(first: number, maxClusters: number, exact: boolean, what: string): Promise<ClusterRun[]> {
    const runs: ClusterRun[] = [];
    let seen: Set<number> | Uint8Array = new Set<number>();
    let count = 0;
    let c = first;
    const where = { file: this.view.name, field: 'FAT' };
    while (true) {
      if (!this.isData(c)) throw new CorruptImageError(`${what}: cluster chain reaches ${c}, not a data cluster (2..${this.geo.clusterCount + 1})`, where);
      if (seen instanceof Set) {
        if (seen.has(c)) throw new CorruptImageError(`${what}: FAT chain loops back to cluster ${c}`, where);
        seen.add(c);
        if (seen.size > SET_LIMIT) {
          const bits = new Uint8Array(Math.ceil((this.geo.clusterCount + 2) / 8));
          for (const s of seen) bits[s >> 3] |= 1 << (s & 7);
          seen = bits;
        }
      } else {
        if (seen[c >> 3] & (1 << (c & 7))) throw new CorruptImageError(`${what}: FAT chain loops back to cluster ${c}`, where);
        seen[c >> 3] |= 1 << (c & 7);
      }
      const last = runs[runs.length - 1];
      if (last && last.cluster + last.count === c) last.count++;
      else runs.push({ cluster: c, count: 1 });
      if (++count === maxClusters && exact) return runs;
      const next = await this.entry(c);
      if (next >= this.eoc) break;
      if (next === this.bad) throw new CorruptImageError(`${what}: cluster chain reaches a cluster marked bad (${c})`, where);
      if (next === 0) throw new CorruptImageError(`${what}: cluster chain reaches a free cluster after ${c}`, where);
      if (count >= maxClusters) throw new LimitExceededError(`${what}: cluster chain is longer than ${maxClusters} clusters`, where);
      c = next;
    }
    if (exact && count < maxClusters) throw new CorruptImageError(`${what}: cluster chain ends after ${count} clusters, the size needs ${maxClusters}`, where);
    return runs;
  }
}
