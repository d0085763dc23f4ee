/**
 * Writing an uncompressed hosted sparse extent (KDMV) in the layout qemu-img creates (docs/FORMATS.md
 * §3.7): header, embedded descriptor area, redundant GD + GTs, GD + GTs, then grains appended in
 * the order the copy engine delivers them. Grain tables are preallocated (both directories point
 * at every one of them), so each table is written once, when the writer moves past its span: the
 * writer holds one table in memory, never the whole map.
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import { isZero } from '../../stream/zero.js';
import type { WriteBehind } from '../shared/write-behind.js';
import { ceilDiv, roundUp } from '../shared/bounds.js';
import {
  COMPRESSION_NONE,
  DEFAULT_GRAIN_SECTORS,
  DEFAULT_GTES_PER_GT,
  FLAG_NEWLINE_DETECT,
  FLAG_REDUNDANT_GD,
  FLAG_ZEROED_GRAIN_GTE,
  GTE_ZEROED,
  MAX_EXTENT_SECTORS,
  NEWLINE_CHECK,
  SECTOR,
  SPARSE_HEADER,
  SPARSE_MAGIC_LE,
  tableBytes,
  tableSectors,
} from './layout.js';

export interface SparsePlan {
  capacitySectors: number;
  grainSectors: number;
  gtEntries: number;
  gtCount: number;
  gdSectors: number;
  gtSectors: number;
  descriptorOffset: number;
  descriptorSectors: number;
  rgdOffset: number;
  gdOffset: number;
  /** First grain sector (header "overHead"). */
  overHead: number;
}

/**
 * QEMU's vmdk_init_extent layout, as a pure function: descriptor at sector 1, the redundant
 * directory and its tables, then the primary directory and its tables, rounded up to a grain.
 */
export function planSparseExtent(capacitySectors: number, descriptorSectors: number, grainSectors = DEFAULT_GRAIN_SECTORS): SparsePlan {
  const gtEntries = DEFAULT_GTES_PER_GT;
  const grains = ceilDiv(capacitySectors, grainSectors);
  const gtCount = ceilDiv(grains, gtEntries);
  const gdSectors = tableSectors(gtCount);
  const gtSectors = tableSectors(gtEntries);
  const descriptorOffset = 1;
  const rgdOffset = descriptorOffset + descriptorSectors;
  const gdOffset = rgdOffset + gdSectors + gtSectors * gtCount;
  const overHead = roundUp(gdOffset + gdSectors + gtSectors * gtCount, grainSectors);
  // Grain sectors are 32-bit: the whole extent must stay addressable (QEMU VMDK_EXTENT_MAX_SECTORS).
  if (overHead + grains * grainSectors > MAX_EXTENT_SECTORS) {
    throw new UsageError(`a sparse VMDK extent cannot hold ${capacitySectors * SECTOR} bytes (2 TiB at most); use subformat=twoGbMaxExtentSparse`);
  }
  return { capacitySectors, grainSectors, gtEntries, gtCount, gdSectors, gtSectors, descriptorOffset, descriptorSectors, rgdOffset, gdOffset, overHead };
}

export interface ExtentWriter {
  /**
   * `offset` relative to the extent, grain aligned; data may end at the extent end. With
   * `behind`, data writes are started and tracked there instead of awaited.
   */
  write(offset: number, data: Uint8Array, behind?: WriteBehind): Promise<void>;
  finish(): Promise<void>;
}

/** Serializes the header sector of a sparse extent. */
export function sparseHeaderBytes(fields: {
  version: number;
  flags: number;
  capacity: number;
  grainSectors: number;
  descriptorOffset: number;
  descriptorSectors: number;
  rgdOffset: number;
  gdOffset: bigint;
  overHead: number;
  compressAlgorithm: number;
}): Uint8Array {
  return SPARSE_HEADER.serialize({
    magic: SPARSE_MAGIC_LE,
    version: fields.version,
    flags: fields.flags,
    capacity: BigInt(fields.capacity),
    grainSize: BigInt(fields.grainSectors),
    descriptorOffset: fields.descriptorOffset,
    descriptorSize: fields.descriptorSectors,
    numGTEsPerGT: DEFAULT_GTES_PER_GT,
    rgdOffset: fields.rgdOffset,
    gdOffset: fields.gdOffset,
    overHead: fields.overHead,
    uncleanShutdown: 0,
    newlineCheck: NEWLINE_CHECK,
    compressAlgorithm: fields.compressAlgorithm,
  });
}

export class SparseExtentWriter implements ExtentWriter {
  private readonly grainBytes: number;
  private nextGrain: number;
  private gt: Uint32Array;
  private gtIndex = -1;
  private gtDirty = false;
  /** Highest offset written so far: blocks must arrive in increasing order. */
  private low = 0;

  private constructor(
    private readonly sink: ByteSink,
    private readonly plan: SparsePlan,
    /** A delta over a parent: a zero grain must read as zeros, not as the parent's bytes. */
    private readonly zeroGrains: 'skip' | 'store' | 'mark',
  ) {
    this.grainBytes = plan.grainSectors * SECTOR;
    this.nextGrain = plan.overHead;
    this.gt = new Uint32Array(plan.gtEntries);
  }

  /** Writes header, descriptor and both directories; the tables stay holes until they get entries. */
  /** `overParent`: the extent belongs to a delta link, so zero grains are stored (or marked, with zeroed grains). */
  static async create(sink: ByteSink, plan: SparsePlan, descriptor: string | undefined, zeroedGrain: boolean, overParent = false): Promise<SparseExtentWriter> {
    if (!sink.seekable) throw new UsageError('a sparse VMDK extent cannot be written to a pipe; use subformat=streamOptimized', { file: sink.name });
    const head = new Uint8Array((plan.descriptorOffset + plan.descriptorSectors) * SECTOR);
    head.set(
      sparseHeaderBytes({
        version: zeroedGrain ? 2 : 1,
        flags: FLAG_NEWLINE_DETECT | FLAG_REDUNDANT_GD | (zeroedGrain ? FLAG_ZEROED_GRAIN_GTE : 0),
        capacity: plan.capacitySectors,
        grainSectors: plan.grainSectors,
        descriptorOffset: plan.descriptorOffset,
        descriptorSectors: plan.descriptorSectors,
        rgdOffset: plan.rgdOffset,
        gdOffset: BigInt(plan.gdOffset),
        overHead: plan.overHead,
        compressAlgorithm: COMPRESSION_NONE,
      }),
    );
    if (descriptor !== undefined) {
      const text = new TextEncoder().encode(descriptor);
      if (text.length > plan.descriptorSectors * SECTOR) throw new UsageError(`descriptor of ${text.length} bytes does not fit in ${plan.descriptorSectors} sectors`);
      head.set(text, plan.descriptorOffset * SECTOR);
    }
    await sink.write(0, head);
    for (const dirSector of [plan.rgdOffset, plan.gdOffset]) {
      const dir = new Uint32Array(plan.gtCount);
      for (let i = 0; i < plan.gtCount; i++) dir[i] = dirSector + plan.gdSectors + i * plan.gtSectors;
      await sink.write(dirSector * SECTOR, tableBytes(dir));
    }
    return new SparseExtentWriter(sink, plan, !overParent ? 'skip' : zeroedGrain ? 'mark' : 'store');
  }

  private async flushGt(): Promise<void> {
    if (!this.gtDirty) return;
    const bytes = tableBytes(this.gt);
    const p = this.plan;
    // Both copies point at the same grains (VMware and QEMU keep them identical).
    await this.sink.write((p.gdOffset + p.gdSectors + this.gtIndex * p.gtSectors) * SECTOR, bytes);
    await this.sink.write((p.rgdOffset + p.gdSectors + this.gtIndex * p.gtSectors) * SECTOR, bytes);
    this.gtDirty = false;
  }

  private async enterGt(index: number): Promise<void> {
    if (index === this.gtIndex) return;
    if (index < this.gtIndex) throw new UsageError('sparse VMDK writer: blocks must arrive in increasing order');
    await this.flushGt();
    this.gtIndex = index;
    this.gt.fill(0);
  }

  async write(offset: number, data: Uint8Array, behind?: WriteBehind): Promise<void> {
    const G = this.grainBytes;
    if (offset % G !== 0 || offset < this.low) throw new UsageError(`sparse VMDK writer: write at ${offset} is not grain-aligned or goes backwards`);
    this.low = offset + data.length;
    // Runs of non-zero grains go to the file in one write each; zero grains stay unallocated.
    let runStart = -1;
    let runHost = 0;
    const flushRun = async (end: number) => {
      if (runStart < 0) return;
      const run = data.subarray(runStart, end);
      runStart = -1;
      await (behind ? behind.write(this.sink, runHost, run) : this.sink.write(runHost, run));
    };
    for (let at = 0; at < data.length; at += G) {
      const chunk = data.subarray(at, Math.min(data.length, at + G));
      const grain = (offset + at) / G;
      const zero = this.zeroGrains !== 'store' && !this.sink.fullyAllocated && isZero(chunk);
      if (zero && this.zeroGrains === 'skip') {
        await flushRun(at);
        continue;
      }
      const gtIndex = Math.floor(grain / this.plan.gtEntries);
      if (gtIndex !== this.gtIndex) {
        await flushRun(at);
        await this.enterGt(gtIndex);
      }
      if (zero) {
        await flushRun(at);
        this.gt[grain - gtIndex * this.plan.gtEntries] = GTE_ZEROED;
        this.gtDirty = true;
        continue;
      }
      if (runStart < 0) {
        runStart = at;
        runHost = this.nextGrain * SECTOR;
      }
      this.gt[grain - gtIndex * this.plan.gtEntries] = this.nextGrain;
      this.gtDirty = true;
      this.nextGrain += this.plan.grainSectors;
    }
    await flushRun(data.length);
  }

  async finish(): Promise<void> {
    await this.flushGt();
    // Covers the preallocated tables and pads a short last grain to a whole one.
    await this.sink.setLength(this.nextGrain * SECTOR);
  }
}
