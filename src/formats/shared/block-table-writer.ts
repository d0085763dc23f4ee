/**
 * What the dynamic VHD and VDI writers share: data assembled into whole blocks (BlockAssembler),
 * each block given the next slot of the data area, and a table in front of the data. On a file
 * the table is written last; on a pipe it must go out first, so the slots are planned from the
 * source's allocation map before the first block, and a block the map called empty is refused.
 * A format supplies the head (everything in front of the first block), how a block is stored in
 * its slot, and the tail.
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { planAllocation } from './bitmap.js';
import { BlockAssembler } from './block-assembler.js';
import { BlockSlots } from './block-slots.js';
import { WriteBehind, WRITES_IN_FLIGHT } from './write-behind.js';

export abstract class BlockTableWriter implements ImageWriter {
  private readonly assembler: BlockAssembler;
  /** storeBlock() tracks block data here: a file takes several blocks in flight; a pipe one at a time, in order. */
  protected readonly behind = new WriteBehind();
  readonly parallelWrites: number;

  protected constructor(
    protected readonly sink: ByteSink,
    protected readonly slots: BlockSlots,
    /** The format's block size (the unit slots hold). */
    private readonly tableBlockSize: number,
    virtualSize: number,
    protected readonly file: string,
    /** What the copy engine is asked to align to (at most the block size). */
    readonly blockSize: number = tableBlockSize,
  ) {
    this.assembler = new BlockAssembler(tableBlockSize, virtualSize, (i, d, reused) => this.emitBlock(i, d, reused), file);
    this.parallelWrites = sink.seekable ? WRITES_IN_FLIGHT : 1;
  }

  /** Slots on demand for a file; for a pipe, planned from the source's allocation map. */
  protected static async slotsFor(sink: ByteSink, spec: CreateSpec, blocks: number, blockSize: number, size: number, what: string): Promise<BlockSlots> {
    if (sink.seekable) return BlockSlots.onDemand(blocks);
    if (!spec.allocation) throw new UsageError(`writing ${what} to a pipe needs the source's allocation map; write to a file instead`, { file: spec.file });
    return BlockSlots.fromPlan(await planAllocation(spec.allocation(), blockSize, size));
  }

  /** A pipe cannot be rewound: everything in front of the first block goes out now (a file gets it at finish()). */
  protected async start(): Promise<this> {
    if (!this.sink.seekable) await this.writeHead();
    return this;
  }

  /** Header(s) and table, with the slots as they stand. */
  protected abstract writeHead(): Promise<void>;
  /** Stores block data in its slot; may start its writes through `behind` instead of awaiting them. */
  protected abstract storeBlock(slot: number, data: Uint8Array): Promise<void>;
  /** What follows the last slot (planned slots that got no data still occupy their place). */
  protected abstract writeTail(): Promise<void>;

  private async emitBlock(index: number, data: Uint8Array, reused: boolean): Promise<void> {
    const slot = this.slots.take(index);
    if (slot === undefined) {
      throw new UsageError(
        `data arrived for block ${index} (offset ${index * this.tableBlockSize}), which the source's allocation map said was empty; a pipe cannot take it`,
        { file: this.file, offset: index * this.tableBlockSize },
      );
    }
    await this.storeBlock(slot, data);
    // An assembled block's buffer is refilled next: its writes must have landed.
    if (reused) await this.behind.settleWrites();
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.behind.call(() => this.assembler.write(offset, data));
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.behind.call(() => this.assembler.writeZeroes(offset, length));
  }

  async finish(): Promise<void> {
    await this.behind.drain();
    await this.assembler.finish();
    if (this.sink.seekable) await this.writeHead();
    await this.behind.drain();
    await this.writeTail();
  }

  async abort(): Promise<void> {
    await this.behind.drain().catch(() => {});
  }
}
