/**
 * qcow2 writer for seekable outputs (files). Blocks arrive from the copy engine in increasing
 * order, a cluster at a time or more; data goes to the next free host cluster, and each L2 table
 * is written right after the data it maps, as soon as the copy moves past its 512 MiB (64 KiB
 * clusters) range. At finish() come the L1 table, the refcount blocks, the refcount table and, at
 * offset 0, the header. Memory: one L2 table, the L1 table (≤ 32 MiB, QEMU's limit; 16 KiB for a
 * 1 TiB disk with 64 KiB clusters) and, with -c, two bytes per host cluster of refcounts and the
 * buffers of the compression jobs in flight. Zero runs cost nothing: they stay unallocated.
 *
 * Layout (clusters): 0 header | data and L2 tables, interleaved | L1 | refcount blocks | refcount table.
 * Every cluster below the end is in use with refcount ≥ 1, so `qemu-img check` finds neither
 * leaks nor holes.
 */
import { LimitExceededError, UsageError } from '../../errors.js';
import { WriteOrder } from '../shared/write-order.js';
import { WriteBehind, WRITES_IN_FLIGHT } from '../shared/write-behind.js';
import type { ByteSink } from '../../stream/sink.js';
import { OrderedPool } from '../../stream/ordered-pool.js';
import { roundUp } from '../shared/bounds.js';
import { looksIncompressible } from '../shared/entropy.js';
import type { ImageWriter } from '../types.js';
import { HostAllocator } from './allocator.js';
import { deflateCluster } from './compressed.js';
import { fillRefcountBlock, headerSpec, setL1 } from './emit.js';
import { serializeHeader } from './header-write.js';
import { L2Builder } from './l2-builder.js';
import { MAX_REFTABLE_BYTES, geometry, type Geometry } from './layout.js';
import type { WriterConfig } from './options.js';
import { refcountGeometry, refcountMetadataSize, type RefcountGeometry } from './refcount.js';

export class Qcow2Writer implements ImageWriter {
  readonly blockSize: number;
  /** Uncompressed data clusters go out while the next call is planned; compression has its own pool. */
  readonly parallelWrites: number;
  private readonly behind = new WriteBehind();
  private readonly g: Geometry;
  private readonly rg: RefcountGeometry;
  private readonly alloc: HostAllocator;
  private readonly l1Bytes: Uint8Array;
  private readonly l1: DataView;
  private readonly l2: L2Builder;
  /** L1 index of the table being filled, −1 for none. */
  private l2Index = -1;
  /** Virtual offset reached: writes must not go back. */
  private readonly pool?: OrderedPool<Uint8Array>;
  /** Cluster buffers for compression jobs, reused once their job is consumed. */
  private readonly spare: Uint8Array[] = [];
  /** A cluster assembled from writes that do not cover it whole (never from the copy engine). */
  private stage?: { index: number; buf: Uint8Array };
  /** With a backing file, zero runs must read as zeros rather than fall through to it. */
  private readonly zeroExplicit: boolean;
  private zeroCluster?: Uint8Array;
  private readonly order: WriteOrder;

  constructor(
    private readonly sink: ByteSink,
    private readonly cfg: WriterConfig,
    private readonly file: string,
  ) {
    this.order = new WriteOrder('qcow2 writer', cfg.virtualSize, file);
    this.g = geometry(cfg.clusterBits, cfg.extendedL2);
    this.rg = refcountGeometry(cfg.clusterBits, cfg.refcountOrder);
    this.blockSize = this.g.clusterSize;
    this.alloc = new HostAllocator(this.g.clusterSize, this.rg.max, cfg.compress);
    this.l1Bytes = new Uint8Array(cfg.l1Size * 8);
    this.l1 = new DataView(this.l1Bytes.buffer);
    this.l2 = new L2Builder(this.g);
    this.zeroExplicit = cfg.backingFile !== undefined;
    if (cfg.compress) this.pool = new OrderedPool<Uint8Array>(cfg.parallelism);
    this.parallelWrites = cfg.compress ? 1 : WRITES_IN_FLIGHT;
    // Fail now, not after the copy, if the header cannot hold the backing file name.
    serializeHeader(headerSpec(cfg, { l1: 0, refcountTable: 0, refcountTableClusters: 0 }), file);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.behind.call(() => this.place(offset, data));
  }

  private async place(offset: number, data: Uint8Array): Promise<void> {
    this.order.advance(offset, data.length);
    const cs = this.g.clusterSize;
    const end = offset + data.length;
    // Whole clusters end at a cluster boundary, or at the virtual end (a short last cluster).
    const wholeEnd = end === this.cfg.virtualSize ? end : Math.floor(end / cs) * cs;
    let v = offset;
    while (v < end) {
      const clusterStart = Math.floor(v / cs) * cs;
      if (v === clusterStart && wholeEnd > v) {
        await this.flushStage();
        await this.putClusters(v, data.subarray(v - offset, wholeEnd - offset));
        v = wholeEnd;
        continue;
      }
      const take = Math.min(clusterStart + cs, end) - v;
      await this.stageBytes(v, data.subarray(v - offset, v - offset + take));
      v += take;
    }
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.behind.call(() => this.placeZeroes(offset, length));
  }

  private async placeZeroes(offset: number, length: number): Promise<void> {
    this.order.advance(offset, length);
    if (!this.zeroExplicit || length === 0) return; // unallocated clusters read as zeros
    const cs = this.g.clusterSize;
    const end = offset + length;
    let v = offset;
    while (v < end) {
      const clusterStart = Math.floor(v / cs) * cs;
      const clusterEnd = Math.min(clusterStart + cs, this.cfg.virtualSize);
      if (v === clusterStart && end >= clusterEnd) {
        // Whole clusters up to the last one the range covers entirely.
        const last = end === this.cfg.virtualSize ? end : Math.floor(end / cs) * cs;
        await this.flushStage();
        await this.putZeroClusters(v, last);
        v = last;
        continue;
      }
      const take = Math.min(clusterStart + cs, end) - v;
      await this.stageBytes(v, this.zeroBytes().subarray(0, take));
      v += take;
    }
  }

  /** Clusters left unallocated over the backing file; whole clusters only, since a cluster is allocated whole or not at all. */
  leave(offset: number, length: number): Promise<void> {
    return this.behind.call(() => this.placeLeft(offset, length));
  }

  private async placeLeft(offset: number, length: number): Promise<void> {
    const cs = this.g.clusterSize;
    const end = offset + length;
    if (offset % cs !== 0 || (end % cs !== 0 && end !== this.cfg.virtualSize)) {
      throw new UsageError(`qcow2 writer: a range left to the backing file must be whole clusters (got ${offset}+${length})`, { file: this.file });
    }
    this.order.advance(offset, length);
    await this.flushStage();
  }

  private zeroBytes(): Uint8Array {
    return (this.zeroCluster ??= new Uint8Array(this.g.clusterSize));
  }

  private async stageBytes(v: number, bytes: Uint8Array): Promise<void> {
    const cs = this.g.clusterSize;
    const index = Math.floor(v / cs);
    if (this.stage && this.stage.index !== index) await this.flushStage();
    this.stage ??= { index, buf: new Uint8Array(cs) };
    this.stage.buf.set(bytes, v - index * cs);
  }

  private async flushStage(): Promise<void> {
    const s = this.stage;
    if (!s) return;
    this.stage = undefined;
    const cs = this.g.clusterSize;
    const start = s.index * cs;
    await this.putClusters(start, s.buf.subarray(0, Math.min(cs, this.cfg.virtualSize - start)));
  }

  /** Makes `l1Index` the table being filled, writing out the previous one. */
  private async useTable(l1Index: number): Promise<void> {
    if (l1Index === this.l2Index) return;
    await this.flushTable();
    this.l2Index = l1Index;
  }

  private async flushTable(): Promise<void> {
    if (this.l2Index >= 0 && this.l2.used > 0) {
      const host = this.alloc.clusters(1) * this.g.clusterSize;
      setL1(this.l1, this.l2Index, host);
      await this.sink.write(host, this.l2.bytes);
    }
    this.l2.reset();
    this.l2Index = -1;
  }

  /** Stores whole clusters starting at virtual offset `v` (cluster aligned). */
  private async putClusters(v: number, bytes: Uint8Array): Promise<void> {
    const g = this.g;
    const cs = g.clusterSize;
    if (this.pool) {
      for (let at = 0; at < bytes.length; at += cs) {
        const index = (v + at) / cs;
        const buf = this.spare.pop() ?? new Uint8Array(cs);
        const piece = bytes.subarray(at, at + cs);
        buf.set(piece);
        if (piece.length < cs) buf.fill(0, piece.length); // short last cluster: QEMU zero-pads it too
        // Data deflate cannot shrink (compressed files, encrypted blocks: most of a typical disk)
        // is stored without spending a deflate on it; QEMU deflates it and then stores it anyway.
        await this.pool.submit(
          () => (looksIncompressible(buf) ? Promise.resolve(buf) : deflateCluster(buf)),
          (out) => this.placeCompressed(index, buf, out),
        );
      }
      return;
    }
    let done = 0;
    while (done < bytes.length) {
      const cluster = (v + done) / cs;
      const l1Index = Math.floor(cluster / g.l2Entries);
      // A run stays within one L2 table so that its clusters are contiguous on the host.
      const runBytes = Math.min(bytes.length - done, (l1Index + 1) * g.l2Coverage - (v + done));
      await this.useTable(l1Index);
      const n = Math.ceil(runBytes / cs);
      const host = this.alloc.clusters(n);
      const first = cluster - l1Index * g.l2Entries;
      for (let k = 0; k < n; k++) this.l2.setData(first + k, (host + k) * cs);
      // The bytes are the engine's (left alone until this call resolves), a staged cluster
      // (never reused) or the shared zero cluster (never changed).
      await this.behind.write(this.sink, host * cs, bytes.subarray(done, done + runBytes));
      done += runBytes;
    }
  }

  /** Consumes one compression job, in order: payload if it saves space (as QEMU: < cluster size), else the plain cluster (`out` may be `raw` itself). */
  private async placeCompressed(index: number, raw: Uint8Array, out: Uint8Array): Promise<void> {
    const g = this.g;
    const l1Index = Math.floor(index / g.l2Entries);
    await this.useTable(l1Index);
    const entry = index - l1Index * g.l2Entries;
    if (out.length < g.clusterSize) {
      const at = this.alloc.payload(out.length);
      this.l2.setCompressed(entry, at, out.length);
      await this.sink.write(at, out);
    } else {
      const host = this.alloc.clusters(1) * g.clusterSize;
      this.l2.setData(entry, host);
      await this.sink.write(host, raw);
    }
    this.spare.push(raw);
  }

  /** Clusters [v, end) must read as zeros over a backing file. */
  private async putZeroClusters(v: number, end: number): Promise<void> {
    const cs = this.g.clusterSize;
    if (this.cfg.version === 2) {
      // Version 2 has no zero flag: store zeros.
      for (let at = v; at < end; at += cs) await this.putClusters(at, this.zeroBytes().subarray(0, Math.min(cs, end - at)));
      return;
    }
    const mark = async () => {
      for (let at = v; at < end; at += cs) {
        const cluster = at / cs;
        const l1Index = Math.floor(cluster / this.g.l2Entries);
        await this.useTable(l1Index);
        this.l2.setZero(cluster - l1Index * this.g.l2Entries);
      }
    };
    // Table updates must stay in order with compression jobs still in flight.
    if (this.pool) await this.pool.submit(() => Promise.resolve(new Uint8Array(0)), mark);
    else await mark();
  }

  async finish(): Promise<void> {
    await this.behind.drain();
    this.order.finish();
    await this.flushStage();
    await this.pool?.drain();
    await this.flushTable();
    const cs = this.g.clusterSize;
    const rg = this.rg;

    const l1Clusters = Math.ceil(this.l1Bytes.length / cs);
    const l1Host = l1Clusters ? this.alloc.clusters(l1Clusters) * cs : 0;
    const { blocks, tableClusters } = refcountMetadataSize(this.alloc.frontier, rg);
    if (tableClusters * cs > MAX_REFTABLE_BYTES) {
      throw new LimitExceededError(`the output needs a ${tableClusters * cs}-byte refcount table, over QEMU's ${MAX_REFTABLE_BYTES}; use larger clusters`, {
        file: this.file,
        field: 'refcount table',
      });
    }
    const rbFirst = this.alloc.clusters(blocks);
    const rtFirst = this.alloc.clusters(tableClusters);
    const total = this.alloc.frontier;

    const block = new Uint8Array(cs);
    for (let b = 0; b < blocks; b++) {
      fillRefcountBlock(block, b, rg, total, (c) => this.alloc.refcount(c));
      await this.sink.write((rbFirst + b) * cs, block);
    }
    // The refcount table comes last and the file ends after its used bytes (QEMU reads zeros past EOF).
    const table = new Uint8Array(roundUp(blocks * 8, 512));
    const tdv = new DataView(table.buffer);
    for (let b = 0; b < blocks; b++) tdv.setBigUint64(b * 8, BigInt((rbFirst + b) * cs));
    await this.sink.write(rtFirst * cs, table);
    if (l1Clusters) await this.sink.write(l1Host, this.l1Bytes);
    const header = serializeHeader(headerSpec(this.cfg, { l1: l1Host, refcountTable: rtFirst * cs, refcountTableClusters: tableClusters }), this.file);
    // Only the used part of cluster 0: the rest stays a hole (a 2 MiB cluster is mostly empty).
    let used = header.length;
    while (used > 0 && header[used - 1] === 0) used--;
    await this.sink.write(0, header.subarray(0, roundUp(used, 512)));
    await this.behind.drain();
    await this.sink.setLength(rtFirst * cs + table.length);
  }

  async abort(): Promise<void> {
    this.order.close();
    await this.behind.drain().catch(() => {});
    await this.pool?.discard();
  }
}
