/**
 * Writing VHDX (dynamic and fixed) with the layout of plan.ts. Dynamic: blocks that receive data
 * take the next slot of the payload area in virtual order; the others are ZERO (block_state_zero,
 * qemu's default) or NOT_PRESENT. Fixed: every block in place, FULLY_PRESENT, zeros left as holes.
 * Everything that describes the data precedes it, so a pipe gets it first (dynamic: planned from
 * the source's allocation map, as dynamic VHD and VDI).
 */
import { UsageError } from '../../errors.js';
import { roundUp } from '../shared/bounds.js';
import type { ByteSink } from '../../stream/sink.js';
import { BlockTableWriter } from '../shared/block-table-writer.js';
import type { BlockSlots } from '../shared/block-slots.js';
import { NO_SLOT } from '../shared/block-slots.js';
import { FlatWriter } from '../shared/flat-writer.js';
import { writeSkippingZeros } from '../shared/sparse-write.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { MAX_VIRTUAL_SIZE, PayloadState } from './layout.js';
import { defaultBlockSize, type VhdxOptions } from './options.js';
import { batPieces, headBytes, metadataBytes, newIdentity, planVhdx, type Identity, type VhdxPlan } from './plan.js';

/** Payload blocks we track while writing (a Uint32Array of slots: 64 MiB; 16 TiB at 1 MiB blocks, 4 PiB at 256 MiB). */
export const MAX_WRITE_BLOCKS = 1 << 24;

export function planFor(requested: number, opts: VhdxOptions, file: string): VhdxPlan {
  // The spec requires whole logical sectors; qemu-img rounds up the same way (to 512, its only sector size).
  const virtualSize = roundUp(requested, opts.logical_sector_size);
  const blockSize = opts.block_size || defaultBlockSize(virtualSize);
  if (virtualSize > MAX_VIRTUAL_SIZE) throw new UsageError(`a VHDX holds at most 64 TiB; ${virtualSize} bytes is more`, { file });
  const plan = planVhdx({ virtualSize, blockSize, logicalSectorSize: opts.logical_sector_size, logSize: opts.log_size, fixed: opts.subformat === 'fixed' });
  if (plan.blocks > MAX_WRITE_BLOCKS) throw new UsageError(`${virtualSize} bytes in ${blockSize}-byte blocks needs ${plan.blocks} blocks, more than the ${MAX_WRITE_BLOCKS} supported; use a larger block_size`, { file });
  return plan;
}

/** Everything in front of the payload: first MiB, metadata, BAT (the log stays zeros: empty, its GUID is zero). */
async function writeFront(sink: ByteSink, plan: VhdxPlan, id: Identity, payload: (block: number) => { state: number; fileOffset: number }): Promise<void> {
  await sink.write(0, headBytes(plan, id));
  if (!sink.seekable) await sink.write(plan.logOffset, new Uint8Array(plan.logSize));
  const meta = metadataBytes(plan, id);
  const metaRegion = new Uint8Array(plan.metadataSize);
  metaRegion.set(meta);
  await sink.write(plan.metadataOffset, sink.seekable ? meta : metaRegion);
  let end = plan.batOffset;
  for (const p of batPieces(plan, payload)) {
    await sink.write(p.offset, p.bytes);
    end = p.offset + p.bytes.length;
  }
  // A pipe has no holes: the rest of the BAT region goes out as zeros.
  if (!sink.seekable && end < plan.dataOffset) await sink.write(end, new Uint8Array(plan.dataOffset - end));
}

export async function createVhdxWriter(sink: ByteSink, spec: CreateSpec, opts: VhdxOptions): Promise<ImageWriter> {
  const plan = planFor(spec.virtualSize, opts, spec.file);
  const id = newIdentity();
  if (plan.fixed) {
    await writeFront(sink, plan, id, (b) => ({ state: PayloadState.fullyPresent, fileOffset: plan.dataOffset + b * plan.blockSize }));
    return new FlatWriter(sink, plan.dataOffset, plan.virtualSize, spec.file, () => sink.setLength(plan.dataOffset + plan.blocks * plan.blockSize));
  }
  return VhdxDynamicWriter.create(sink, spec, plan, id, opts.block_state_zero);
}

class VhdxDynamicWriter extends BlockTableWriter {
  static async create(sink: ByteSink, spec: CreateSpec, plan: VhdxPlan, id: Identity, zeroState: boolean): Promise<VhdxDynamicWriter> {
    const slots = await BlockTableWriter.slotsFor(sink, spec, plan.blocks, plan.blockSize, plan.virtualSize, 'a dynamic VHDX');
    return new VhdxDynamicWriter(sink, plan, slots, spec.file, id, zeroState).start();
  }

  private constructor(
    sink: ByteSink,
    private readonly plan: VhdxPlan,
    slots: BlockSlots,
    file: string,
    private readonly id: Identity,
    private readonly zeroState: boolean,
  ) {
    // The engine hands over at most 1 MiB at a time; blocks are assembled whole.
    super(sink, slots, plan.blockSize, plan.virtualSize, file, Math.min(plan.blockSize, 1024 * 1024));
  }

  protected async writeHead(): Promise<void> {
    const slots = this.slots.slots;
    const empty = this.zeroState ? PayloadState.zero : PayloadState.notPresent;
    await writeFront(this.sink, this.plan, this.id, (b) =>
      slots[b] === NO_SLOT ? { state: empty, fileOffset: 0 } : { state: PayloadState.fullyPresent, fileOffset: this.plan.dataOffset + slots[b] * this.plan.blockSize },
    );
  }

  protected async storeBlock(slot: number, data: Uint8Array): Promise<void> {
    await writeSkippingZeros(this.sink, this.plan.dataOffset + slot * this.plan.blockSize, data, this.behind);
  }

  protected async writeTail(): Promise<void> {
    await this.sink.setLength(this.plan.dataOffset + this.slots.count * this.plan.blockSize);
  }
}
