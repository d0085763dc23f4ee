/**
 * Writing fixed and dynamic VHDs. Neither writer has a copy loop: the copy engine hands over
 * data and zero runs in increasing order (DESIGN.md "bytes move in one place").
 *
 * Fixed: the data at its own offset, holes for zeros, the footer after the last byte.
 * Dynamic: qemu's layout — footer copy, dynamic header, BAT, blocks (an all-ones sector bitmap then
 * the data) in virtual order, footer. All-zero blocks stay unallocated. On a file the BAT is
 * written last; on a pipe it must come first, so it is planned from the source's allocation map
 * before the first block and the blocks then follow in one forward pass.
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import { BlockAssembler } from '../shared/block-assembler.js';
import { FlatWriter } from '../shared/flat-writer.js';
import { BlockSlots } from '../shared/block-slots.js';
import { planAllocation } from '../shared/bitmap.js';
import { writeSkippingZeros } from '../shared/sparse-write.js';
import { randomUuid } from '../shared/uuid.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { createGeometry, type CreateGeometry } from './geometry.js';
import { SECTOR } from './layout.js';
import { defaultBlockSize, type VhdOptions } from './options.js';
import { batBytes, dynamicHeaderBytes, footerBytes, planDynamic, slotOffset, type DynamicPlan } from './records.js';

/** BAT entries we are willing to build in memory (64 MiB of table: 2040 GiB needs 1 Mi entries at 2 MiB blocks). */
export const MAX_WRITE_ENTRIES = 1 << 24;
/** The largest run the copy engine should hand over at once; bigger blocks are assembled from pieces. */
const MAX_PREFERRED_BLOCK = 4 * 1024 * 1024;
/** BAT entries count sectors in 32 bits, so no block may start at or beyond 2 TiB. */
const MAX_BAT_SECTOR = 0xffff_fffe;

export async function createVhdWriter(sink: ByteSink, spec: CreateSpec, opts: VhdOptions): Promise<ImageWriter> {
  const geometry = createGeometry(spec.virtualSize, opts.force_size);
  if (!geometry) throw new UsageError(`disk size ${spec.virtualSize} is too large for VHD: the maximum is 2040 GiB`, { file: spec.file });
  const footer = footerBytes({ geometry, type: opts.subformat, forceSize: opts.force_size, uniqueId: randomUuid('rfc'), createdAt: Math.floor(Date.now() / 1000) });
  if (opts.subformat === 'fixed') return new FlatWriter(sink, 0, geometry.size, spec.file, () => sink.write(geometry.size, footer));
  return VhdDynamicWriter.create(sink, spec, geometry, footer, defaultBlockSize(opts));
}

class VhdDynamicWriter implements ImageWriter {
  readonly blockSize: number;
  private readonly assembler: BlockAssembler;
  /** Sector bitmap of a fully written block: every sector present (as qemu writes). */
  private readonly fullBitmap: Uint8Array;
  private headWritten = false;

  private constructor(
    private readonly sink: ByteSink,
    private readonly plan: DynamicPlan,
    private readonly slots: BlockSlots,
    private readonly footer: Uint8Array,
    virtualSize: number,
    private readonly file: string,
  ) {
    this.blockSize = Math.min(plan.blockSize, MAX_PREFERRED_BLOCK);
    this.fullBitmap = new Uint8Array(plan.bitmapSize).fill(0xff);
    this.assembler = new BlockAssembler(plan.blockSize, virtualSize, (i, d) => this.emitBlock(i, d), file);
  }

  static async create(sink: ByteSink, spec: CreateSpec, geometry: CreateGeometry, footer: Uint8Array, blockSize: number): Promise<VhdDynamicWriter> {
    const plan = planDynamic(geometry.size, blockSize);
    if (plan.entries > MAX_WRITE_ENTRIES) {
      throw new UsageError(`a ${geometry.size}-byte disk in ${blockSize}-byte blocks needs ${plan.entries} BAT entries, more than ${MAX_WRITE_ENTRIES}; use a larger block_size`, { file: spec.file });
    }
    if ((slotOffset(plan, plan.entries) - plan.blockStride) / SECTOR > MAX_BAT_SECTOR) {
      throw new UsageError(`blocks of a ${geometry.size}-byte disk in ${blockSize}-byte blocks would lie beyond the 2 TiB a BAT entry can address`, { file: spec.file });
    }
    let slots: BlockSlots;
    if (sink.seekable) {
      slots = BlockSlots.onDemand(plan.entries);
    } else {
      if (!spec.allocation) {
        throw new UsageError("writing a dynamic VHD to a pipe needs the source's allocation map; write to a file instead", { file: spec.file });
      }
      slots = BlockSlots.fromPlan(await planAllocation(spec.allocation(), blockSize, geometry.size));
    }
    const w = new VhdDynamicWriter(sink, plan, slots, footer, geometry.size, spec.file);
    // A pipe cannot be rewound: everything in front of the first block goes out now.
    if (!sink.seekable) await w.writeHead();
    return w;
  }

  private async writeHead(): Promise<void> {
    const p = this.plan;
    await this.sink.write(0, this.footer);
    await this.sink.write(p.headerOffset, dynamicHeaderBytes(p));
    await this.sink.write(p.tableOffset, batBytes(p, this.slots.slots));
    this.headWritten = true;
  }

  private async emitBlock(index: number, data: Uint8Array): Promise<void> {
    const slot = this.slots.take(index);
    if (slot === undefined) {
      throw new UsageError(
        `data arrived for block ${index} (offset ${index * this.plan.blockSize}), which the source's allocation map said was empty; a pipe cannot take it`,
        { file: this.file, offset: index * this.plan.blockSize },
      );
    }
    const at = slotOffset(this.plan, slot);
    await this.sink.write(at, this.fullBitmap);
    await writeSkippingZeros(this.sink, at + this.plan.bitmapSize, data);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.assembler.write(offset, data);
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.assembler.writeZeroes(offset, length);
  }

  async finish(): Promise<void> {
    await this.assembler.finish();
    if (!this.headWritten) await this.writeHead();
    // Planned blocks that received no data still occupy their slots (a pipe already holds the BAT).
    await this.sink.write(slotOffset(this.plan, this.slots.count), this.footer);
  }

  async abort(): Promise<void> {}
}
