/**
 * Host space allocation for the seekable writer: a pure state machine (no I/O), unit-tested alone.
 *
 * Clusters are handed out from a frontier that only grows, so every cluster below it is in use
 * and the image has no holes to account for. Compressed payloads are packed at byte granularity
 * as QEMU packs them (qcow2-refcount.c qcow2_alloc_bytes): after the previous payload, spilling
 * into the next cluster when it is the frontier. Where QEMU abandons the tail of a partly filled
 * cluster once an aligned cluster (an incompressible cluster, an L2 table) has been allocated
 * after it, we keep up to OPEN_LIMIT such tails and fill them first-fit with later payloads that
 * fit: the output is never larger than QEMU's packing and usually smaller.
 *
 * A cluster's refcount is the number of payloads touching it; a cluster whose refcount reached
 * the format's maximum (1 with refcount_bits=1) takes no further payload.
 */
import { HostRefcounts } from './refcount.js';

/** Partly filled clusters remembered for later payloads. */
const OPEN_LIMIT = 16;
/** A tail smaller than this cannot hold any real payload (deflate of a cluster is ≥ ~10 bytes). */
const MIN_TAIL = 16;

interface OpenCluster {
  cluster: number;
  used: number;
}

export class HostAllocator {
  /** Next never-used cluster. */
  frontier: number;
  /** Byte offset just after the last payload, when it ends inside cluster frontier − 1; else −1. */
  private tail = -1;
  private readonly open: OpenCluster[] = [];
  /** Per-cluster refcounts, kept only when payloads may share clusters (compression). */
  private readonly counts?: HostRefcounts;

  constructor(
    private readonly clusterSize: number,
    private readonly refcountMax: number,
    trackRefcounts: boolean,
    reserved = 1,
  ) {
    this.frontier = reserved;
    if (trackRefcounts) {
      this.counts = new HostRefcounts();
      for (let c = 0; c < reserved; c++) this.counts.add(c);
    }
  }

  /** Refcount of a host cluster below the frontier (1 everywhere unless compressed payloads share clusters). */
  refcount(cluster: number): number {
    if (cluster >= this.frontier) return 0;
    return this.counts ? this.counts.get(cluster) : 1;
  }

  /** `n` consecutive whole clusters (data, L2 tables, final metadata). Returns the first index. */
  clusters(n: number): number {
    if (this.tail >= 0) {
      // The partly filled frontier cluster is no longer next to the frontier: remember its tail.
      this.remember(Math.floor(this.tail / this.clusterSize), this.tail % this.clusterSize);
      this.tail = -1;
    }
    const first = this.frontier;
    this.frontier += n;
    if (this.counts) for (let c = first; c < first + n; c++) this.counts.add(c);
    return first;
  }

  /** Places a compressed payload of `length` (< cluster size) bytes; returns its byte offset. */
  payload(length: number): number {
    const cs = this.clusterSize;
    const counts = this.counts;
    if (!counts) throw new Error('HostAllocator: compressed payloads need refcount tracking');
    // 1. A remembered tail that fits.
    for (let i = 0; i < this.open.length; i++) {
      const o = this.open[i];
      if (cs - o.used >= length && counts.get(o.cluster) < this.refcountMax) {
        const at = o.cluster * cs + o.used;
        o.used += length;
        counts.add(o.cluster);
        if (cs - o.used < MIN_TAIL || counts.get(o.cluster) >= this.refcountMax) this.open.splice(i, 1);
        return at;
      }
    }
    // 2. After the previous payload (spilling into fresh clusters), or at the frontier.
    let at: number;
    if (this.tail >= 0 && counts.get(Math.floor(this.tail / cs)) < this.refcountMax) at = this.tail;
    else at = this.frontier * cs;
    const first = Math.floor(at / cs);
    const last = Math.floor((at + length - 1) / cs);
    for (let c = first; c <= last; c++) counts.add(c);
    this.frontier = Math.max(this.frontier, last + 1);
    const end = at + length;
    this.tail = end % cs === 0 ? -1 : end;
    return at;
  }

  private remember(cluster: number, used: number): void {
    if (this.clusterSize - used < MIN_TAIL || this.counts!.get(cluster) >= this.refcountMax) return;
    this.open.push({ cluster, used });
    if (this.open.length > OPEN_LIMIT) {
      // Forget the fullest tail.
      let worst = 0;
      for (let i = 1; i < this.open.length; i++) if (this.open[i].used > this.open[worst].used) worst = i;
      this.open.splice(worst, 1);
    }
  }
}
