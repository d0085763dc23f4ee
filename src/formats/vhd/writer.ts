/**
 * Writing fixed and dynamic VHDs. Neither writer has a copy loop: the copy engine hands over
 * data and zero runs in increasing order (docs/ARCHITECTURE.md "Bytes move in one place").
 *
 * Fixed: the data at its own offset, holes for zeros, the footer after the last byte.
 * Dynamic: qemu's layout — footer copy, dynamic header, BAT, blocks (an all-ones sector bitmap then
 * the data) in virtual order, footer. All-zero blocks stay unallocated. On a file the BAT is
 * written last; on a pipe it must come first, so it is planned from the source's allocation map
 * before the first block and the blocks then follow in one forward pass.
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import { BlockTableWriter } from '../shared/block-table-writer.js';
import { FlatWriter } from '../shared/flat-writer.js';
import type { BlockSlots } from '../shared/block-slots.js';
import { writeSkippingZeros } from '../shared/sparse-write.js';
import { uuidOrRandom } from '../shared/uuid.js';
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
  const footer = footerBytes({ geometry, type: opts.subformat, forceSize: opts.force_size, uniqueId: uuidOrRandom(opts.uuid, 'rfc'), createdAt: Math.floor(Date.now() / 1000) });
  if (opts.subformat === 'fixed') return new FlatWriter(sink, 0, geometry.size, spec.file, () => sink.write(geometry.size, footer));
  return VhdDynamicWriter.create(sink, spec, geometry, footer, defaultBlockSize(opts));
}

class VhdDynamicWriter extends BlockTableWriter {
  /** Sector bitmap of a fully written block: every sector present (as qemu writes). */
  private readonly fullBitmap: Uint8Array;

  static async create(sink: ByteSink, spec: CreateSpec, geometry: CreateGeometry, footer: Uint8Array, blockSize: number): Promise<VhdDynamicWriter> {
    const plan = planDynamic(geometry.size, blockSize);
    if (plan.entries > MAX_WRITE_ENTRIES) {
      throw new UsageError(`a ${geometry.size}-byte disk in ${blockSize}-byte blocks needs ${plan.entries} BAT entries, more than ${MAX_WRITE_ENTRIES}; use a larger block_size`, { file: spec.file });
    }
    if ((slotOffset(plan, plan.entries) - plan.blockStride) / SECTOR > MAX_BAT_SECTOR) {
      throw new UsageError(`blocks of a ${geometry.size}-byte disk in ${blockSize}-byte blocks would lie beyond the 2 TiB a BAT entry can address`, { file: spec.file });
    }
    const slots = await BlockTableWriter.slotsFor(sink, spec, plan.entries, blockSize, geometry.size, 'a dynamic VHD');
    return new VhdDynamicWriter(sink, plan, slots, footer, geometry.size, spec.file).start();
  }

  private constructor(
    sink: ByteSink,
    private readonly plan: DynamicPlan,
    slots: BlockSlots,
    private readonly footer: Uint8Array,
    virtualSize: number,
    file: string,
  ) {
    super(sink, slots, plan.blockSize, virtualSize, file, Math.min(plan.blockSize, MAX_PREFERRED_BLOCK));
    this.fullBitmap = new Uint8Array(plan.bitmapSize).fill(0xff);
  }

  protected async writeHead(): Promise<void> {
    const p = this.plan;
    await this.sink.write(0, this.footer);
    await this.sink.write(p.headerOffset, dynamicHeaderBytes(p));
    await this.sink.write(p.tableOffset, batBytes(p, this.slots.slots));
  }

  protected async storeBlock(slot: number, data: Uint8Array): Promise<void> {
    const at = slotOffset(this.plan, slot);
    await this.behind.write(this.sink, at, this.fullBitmap);
    await writeSkippingZeros(this.sink, at + this.plan.bitmapSize, data, this.behind);
  }

  /** Planned blocks that received no data still occupy their slots (a pipe already holds the BAT). */
  protected async writeTail(): Promise<void> {
    await this.sink.write(slotOffset(this.plan, this.slots.count), this.footer);
  }
}
