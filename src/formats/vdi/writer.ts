/**
 * Writing VDIs with qemu's layout (vdi_co_do_create; docs/FORMATS.md §5.3): the header in the first
 * sector, the block map from 0x200, the data area right after the map, 1 MiB blocks.
 *
 * Static (`static=on`): every block allocated in place (map entry i = i); zeros stay holes.
 * Dynamic (default): blocks that receive data are appended in virtual order; all-zero blocks stay
 * free (0xFFFFFFFF). On a file the header and map are written last; on a pipe they must come
 * first, so the map is planned from the source's allocation map (as the dynamic VHD writer does).
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import { BlockTableWriter } from '../shared/block-table-writer.js';
import { FlatWriter } from '../shared/flat-writer.js';
import type { BlockSlots } from '../shared/block-slots.js';
import { writeSkippingZeros } from '../shared/sparse-write.js';
import { ceilDiv, roundUp } from '../shared/bounds.js';
import { randomUuid, uuidOrRandom } from '../shared/uuid.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { DEFAULT_BLOCK_SIZE, HEADER_SECTOR, HEADER_V1_SIZE, ImageType, SECTOR, VDI_HEADER, VDI_SIGNATURE, VDI_TEXT, VDI_VERSION_1_1 } from './layout.js';
import type { VdiOptions } from './options.js';

/** Blocks we are willing to map in memory (64 MiB of map; 16 TiB at 1 MiB blocks). */
export const MAX_WRITE_BLOCKS = 1 << 24;

interface Plan {
  size: number;
  blocks: number;
  offBlocks: number;
  offData: number;
}

export function planVdi(virtualSize: number): Plan {
  const size = roundUp(virtualSize, SECTOR);
  const blocks = ceilDiv(size, DEFAULT_BLOCK_SIZE);
  const offBlocks = HEADER_SECTOR;
  return { size, blocks, offBlocks, offData: offBlocks + roundUp(blocks * 4, SECTOR) };
}

export function headerBytes(plan: Plan, type: 'dynamic' | 'static', blocksAllocated: number, uuidImage: Uint8Array): Uint8Array {
  const buf = new Uint8Array(HEADER_SECTOR);
  const text = new TextEncoder().encode(VDI_TEXT);
  VDI_HEADER.serialize(
    {
      text,
      signature: VDI_SIGNATURE,
      version: VDI_VERSION_1_1,
      headerSize: HEADER_V1_SIZE,
      imageType: type === 'static' ? ImageType.fixed : ImageType.normal,
      imageFlags: 0,
      comment: new Uint8Array(0),
      offBlocks: plan.offBlocks,
      offData: plan.offData,
      // No legacy geometry (qemu writes zeros); the sector size must be 512 for qemu to open it.
      cylinders: 0,
      heads: 0,
      sectors: 0,
      sectorSize: SECTOR,
      dummy: 0,
      diskSize: plan.size,
      blockSize: DEFAULT_BLOCK_SIZE,
      blockExtra: 0,
      blocksInImage: plan.blocks,
      blocksAllocated,
      uuidImage,
      uuidModify: randomUuid('guid'),
      uuidLinkage: new Uint8Array(16),
      uuidParentModify: new Uint8Array(16),
    },
    buf,
  );
  return buf;
}

function mapBytes(plan: Plan, entry: (i: number) => number): Uint8Array {
  const buf = new Uint8Array(plan.offData - plan.offBlocks);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < plan.blocks; i++) dv.setUint32(i * 4, entry(i), true);
  return buf;
}

export async function createVdiWriter(sink: ByteSink, spec: CreateSpec, opts: VdiOptions): Promise<ImageWriter> {
  const plan = planVdi(spec.virtualSize);
  if (plan.blocks > MAX_WRITE_BLOCKS) {
    throw new UsageError(`disk size ${spec.virtualSize} needs ${plan.blocks} VDI blocks, more than the ${MAX_WRITE_BLOCKS} supported`, { file: spec.file });
  }
  const uuid = uuidOrRandom(opts.uuid, 'guid');
  if (opts.static) {
    // Everything is known up front: header and identity map first, then data in place.
    await sink.write(0, headerBytes(plan, 'static', plan.blocks, uuid));
    await sink.write(plan.offBlocks, mapBytes(plan, (i) => i));
    return new FlatWriter(sink, plan.offData, plan.size, spec.file, () => sink.setLength(plan.offData + plan.blocks * DEFAULT_BLOCK_SIZE));
  }
  return VdiDynamicWriter.create(sink, spec, plan, uuid);
}

class VdiDynamicWriter extends BlockTableWriter {
  static async create(sink: ByteSink, spec: CreateSpec, plan: Plan, uuid: Uint8Array): Promise<VdiDynamicWriter> {
    const slots = await BlockTableWriter.slotsFor(sink, spec, plan.blocks, DEFAULT_BLOCK_SIZE, plan.size, 'a dynamic VDI');
    return new VdiDynamicWriter(sink, plan, slots, spec.file, uuid).start();
  }

  private constructor(
    sink: ByteSink,
    private readonly plan: Plan,
    slots: BlockSlots,
    file: string,
    private readonly uuid: Uint8Array,
  ) {
    super(sink, slots, DEFAULT_BLOCK_SIZE, plan.size, file);
  }

  protected async writeHead(): Promise<void> {
    const slots = this.slots.slots;
    await this.sink.write(0, headerBytes(this.plan, 'dynamic', this.slots.count, this.uuid));
    // Unallocated slots are NO_SLOT = 0xFFFFFFFF, which is exactly VDI's "free" marker.
    await this.sink.write(this.plan.offBlocks, mapBytes(this.plan, (i) => slots[i]));
  }

  protected async storeBlock(slot: number, data: Uint8Array): Promise<void> {
    await writeSkippingZeros(this.sink, this.plan.offData + slot * DEFAULT_BLOCK_SIZE, data, this.behind);
  }

  protected async writeTail(): Promise<void> {
    await this.sink.setLength(this.plan.offData + this.slots.count * DEFAULT_BLOCK_SIZE);
  }
}
