/**
 * The one-pass layout for writing qcow2 to a pipe: every structure is placed before the first byte
 * is written, from the source's allocation map (which clusters will hold data). A pure function of
 * the map and the configuration, unit-tested alone.
 *
 * Layout (clusters): 0 header | refcount table | refcount blocks | L1 | L2 tables, in L1 order |
 * data clusters, in virtual order. Everything below `total` has refcount 1. A planned cluster that
 * turns out to be all zeros is still stored (as zeros): its L2 entry was written before its data
 * was seen. That is the price of one pass; a seekable output leaves such clusters unallocated.
 */
import { LimitExceededError } from '../../errors.js';
import type { Bitmap } from '../shared/bitmap.js';
import { ceilDiv } from '../shared/bounds.js';
import { MAX_REFTABLE_BYTES, type Geometry } from './layout.js';
import { refcountMetadataSize, type RefcountGeometry } from './refcount.js';

export interface StreamPlan {
  /** Clusters of the virtual disk. */
  clusters: number;
  l1Size: number;
  /** L1 indices whose range holds data, in increasing order (one L2 table each). */
  tables: number[];
  dataClusters: number;
  refcountTable: number;
  refcountTableClusters: number;
  refcountBlocks: number;
  refcountBlockFirst: number;
  l1: number;
  l1Clusters: number;
  l2First: number;
  dataFirst: number;
  /** Clusters in the file. */
  total: number;
}

/** Set bits per byte value. */
export const POPCOUNT = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

/** Set bits of `bm` in [from, to). */
export function countBits(bm: Bitmap, from: number, to: number): number {
  let n = 0;
  let i = from;
  for (; i < to && i & 7; i++) if (bm.get(i)) n++;
  const bytes = bm.bytes;
  for (; i + 8 <= to; i += 8) n += POPCOUNT[bytes[i >>> 3]];
  for (; i < to; i++) if (bm.get(i)) n++;
  return n;
}

export function planStreamLayout(plan: Bitmap, g: Geometry, rg: RefcountGeometry, l1Size: number, file?: string): StreamPlan {
  const clusters = plan.size;
  const tables: number[] = [];
  let dataClusters = 0;
  for (let t = 0; t * g.l2Entries < clusters; t++) {
    const n = countBits(plan, t * g.l2Entries, Math.min(clusters, (t + 1) * g.l2Entries));
    if (n) tables.push(t);
    dataClusters += n;
  }
  const l1Clusters = ceilDiv(l1Size * 8, g.clusterSize);
  const used = 1 + l1Clusters + tables.length + dataClusters;
  const { blocks, tableClusters } = refcountMetadataSize(used, rg);
  if (tableClusters * g.clusterSize > MAX_REFTABLE_BYTES) {
    throw new LimitExceededError(`the output needs a ${tableClusters * g.clusterSize}-byte refcount table, over QEMU's ${MAX_REFTABLE_BYTES}; use larger clusters`, {
      file,
      field: 'refcount table',
    });
  }
  const refcountTable = 1;
  const refcountBlockFirst = refcountTable + tableClusters;
  const l1 = refcountBlockFirst + blocks;
  const l2First = l1 + l1Clusters;
  const dataFirst = l2First + tables.length;
  return {
    clusters,
    l1Size,
    tables,
    dataClusters,
    refcountTable,
    refcountTableClusters: tableClusters,
    refcountBlocks: blocks,
    refcountBlockFirst,
    l1,
    l1Clusters,
    l2First,
    dataFirst,
    total: dataFirst + dataClusters,
  };
}
