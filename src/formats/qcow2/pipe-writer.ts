/**
 * qcow2 writer for forward-only outputs (a pipe): the layout is planned from the source's
 * allocation map (plan.ts), all metadata is written first, then each data cluster at its planned
 * place as it arrives. The sink fills gaps (planned clusters that came as zeros) with zero bytes.
 * This is what `qemu-img convert` cannot do: it needs to seek in its qcow2 output.
 *
 * Memory: the plan bitmap (one bit per virtual cluster: 2 MiB for 1 TiB in 64 KiB clusters), the
 * L1 table and one cluster buffer.
 */
import { IoError, UsageError } from '../../errors.js';
import { WriteOrder } from '../shared/write-order.js';
import type { ByteSink } from '../../stream/sink.js';
import { planAllocation, type Bitmap } from '../shared/bitmap.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { fillRefcountBlock, headerSpec, setL1 } from './emit.js';
import { serializeHeader } from './header-write.js';
import { L2Builder } from './l2-builder.js';
import { geometry, type Geometry } from './layout.js';
import type { WriterConfig } from './options.js';
import { countBits, planStreamLayout, type StreamPlan } from './plan.js';
import { refcountGeometry } from './refcount.js';

export class Qcow2StreamWriter implements ImageWriter {
  readonly blockSize: number;
  /** Rank bookkeeping: `rank` planned clusters lie before cluster `rankAt`. */
  private rankAt = 0;
  private rank = 0;
  private readonly order: WriteOrder;

  private constructor(
    private readonly sink: ByteSink,
    private readonly cfg: WriterConfig,
    private readonly g: Geometry,
    private readonly bitmap: Bitmap,
    private readonly plan: StreamPlan,
    private readonly file: string,
  ) {
    this.order = new WriteOrder('qcow2 writer', cfg.virtualSize, file);
    this.blockSize = g.clusterSize;
  }

  static async create(sink: ByteSink, cfg: WriterConfig, spec: CreateSpec): Promise<Qcow2StreamWriter> {
    if (cfg.compress) throw new UsageError('compressed qcow2 cannot be written to a pipe in one pass; give an output file', { file: spec.file });
    if (cfg.backingFile !== undefined) {
      throw new UsageError('a qcow2 image with a backing file cannot be written to a pipe in one pass; give an output file', { file: spec.file });
    }
    if (!spec.allocation) {
      throw new UsageError("writing qcow2 to a pipe needs the source's allocation map up front", { file: spec.file });
    }
    const g = geometry(cfg.clusterBits, cfg.extendedL2);
    const rg = refcountGeometry(cfg.clusterBits, cfg.refcountOrder);
    const bitmap = await planAllocation(spec.allocation(), g.clusterSize, cfg.virtualSize);
    const plan = planStreamLayout(bitmap, g, rg, cfg.l1Size, spec.file);
    const w = new Qcow2StreamWriter(sink, cfg, g, bitmap, plan, spec.file);
    await w.writeMetadata(rg);
    return w;
  }

  /** Header, refcount table, refcount blocks, L1, L2 tables: everything before the first data cluster. */
  private async writeMetadata(rg: ReturnType<typeof refcountGeometry>): Promise<void> {
    const { g, plan, sink } = this;
    const cs = g.clusterSize;
    const header = serializeHeader(
      headerSpec(this.cfg, { l1: plan.l1 * cs, refcountTable: plan.refcountTable * cs, refcountTableClusters: plan.refcountTableClusters }),
      this.file,
    );
    await sink.write(0, header);

    const buf = new Uint8Array(cs);
    const dv = new DataView(buf.buffer);
    const perCluster = cs / 8;
    for (let c = 0; c < plan.refcountTableClusters; c++) {
      buf.fill(0);
      for (let i = 0; i < perCluster; i++) {
        const b = c * perCluster + i;
        if (b >= plan.refcountBlocks) break;
        dv.setBigUint64(i * 8, BigInt((plan.refcountBlockFirst + b) * cs));
      }
      await sink.write((plan.refcountTable + c) * cs, buf);
    }
    for (let b = 0; b < plan.refcountBlocks; b++) {
      fillRefcountBlock(buf, b, rg, plan.total, () => 1);
      await sink.write((plan.refcountBlockFirst + b) * cs, buf);
    }

    const l1Bytes = new Uint8Array(plan.l1Clusters * cs);
    const l1 = new DataView(l1Bytes.buffer);
    plan.tables.forEach((t, k) => setL1(l1, t, (plan.l2First + k) * cs));
    await sink.write(plan.l1 * cs, l1Bytes);

    const l2 = new L2Builder(g);
    let rank = 0;
    for (let k = 0; k < plan.tables.length; k++) {
      const t = plan.tables[k];
      l2.reset();
      const first = t * g.l2Entries;
      const last = Math.min(plan.clusters, first + g.l2Entries);
      for (let c = first; c < last; c++) {
        if (this.bitmap.get(c)) l2.setData(c - first, (plan.dataFirst + rank++) * cs);
      }
      await sink.write((plan.l2First + k) * cs, l2.bytes);
    }
  }

  /** Host offset of planned cluster `cluster` (clusters are asked for in increasing order). */
  private hostOf(cluster: number, offset: number): number {
    if (!this.bitmap.get(cluster)) {
      throw new IoError(`the source delivered data at ${offset}, outside the allocation map it announced; a pipe output cannot be amended`, {
        file: this.file,
        offset,
      });
    }
    this.rank += countBits(this.bitmap, this.rankAt, cluster);
    this.rankAt = cluster;
    return (this.plan.dataFirst + this.rank) * this.g.clusterSize;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.advance(offset, data.length);
    const cs = this.g.clusterSize;
    let v = offset;
    const end = offset + data.length;
    while (v < end) {
      // One sink write per run of planned clusters (they are consecutive on the host too).
      const cluster = Math.floor(v / cs);
      const host = this.hostOf(cluster, v) + (v - cluster * cs);
      let runEnd = Math.min(end, (cluster + 1) * cs);
      while (runEnd < end && this.bitmap.get(runEnd / cs)) runEnd = Math.min(end, runEnd + cs);
      await this.sink.write(host, data.subarray(v - offset, runEnd - offset));
      v = runEnd;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    // Unplanned clusters are unallocated; planned ones become zero bytes when the sink fills the gap.
    this.order.advance(offset, length);
  }

  async finish(): Promise<void> {
    this.order.finish();
    await this.sink.setLength(this.plan.total * this.g.clusterSize);
  }

  async abort(): Promise<void> {
    this.order.close();
  }
}
