/**
 * Turns a writer's input — write()/writeZeroes() in increasing offset order, of any length — into
 * whole fixed-size blocks, for formats that store data in allocation units (VHD blocks, VDI
 * blocks). The copy engine already aligns data to the writer's block size, so whole blocks pass
 * straight through without a copy; only a block that arrives in pieces (a last block cut by the
 * virtual size, a data run split by zero detection, every block when the format's block is larger
 * than what the engine hands over) is assembled in one reused buffer.
 * Blocks that receive no data are never emitted: the format leaves them unallocated.
 */
import { UsageError } from '../../errors.js';

/** `reused`: the assembler refills `data` once the promise resolves, so it must be written by then. */
export type BlockSink = (index: number, data: Uint8Array, reused: boolean) => Promise<void>;

export class BlockAssembler {
  /** Block being assembled, or -1. */
  private current = -1;
  private buffer: Uint8Array | undefined;
  /** Whether `buffer` holds any data written since the last flush. */
  private dirty = false;
  /** Offsets below this were already handed over (writers receive increasing offsets). */
  private position = 0;

  constructor(
    readonly blockSize: number,
    readonly virtualSize: number,
    private readonly emit: BlockSink,
    private readonly file?: string,
  ) {}

  private advance(offset: number, length: number): void {
    if (offset < this.position || offset + length > this.virtualSize) {
      throw new UsageError(
        `write of ${length} bytes at ${offset} is out of order or past the virtual size ${this.virtualSize} (already at ${this.position})`,
        { file: this.file, offset },
      );
    }
    this.position = offset + length;
  }

  private async flush(): Promise<void> {
    if (this.current < 0) return;
    const index = this.current;
    this.current = -1;
    if (this.dirty) {
      this.dirty = false;
      await this.emit(index, this.buffer!, true);
      this.buffer!.fill(0);
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.advance(offset, data.length);
    const bs = this.blockSize;
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const index = Math.floor(at / bs);
      const inBlock = at - index * bs;
      const n = Math.min(bs - inBlock, data.length - pos);
      if (index !== this.current) await this.flush();
      if (inBlock === 0 && n === bs) {
        await this.emit(index, data.subarray(pos, pos + n), false);
      } else {
        this.current = index;
        this.buffer ??= new Uint8Array(bs);
        this.buffer.set(data.subarray(pos, pos + n), inBlock);
        this.dirty = true;
      }
      pos += n;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.advance(offset, length);
    // Zeros inside the block being assembled are already zero in the buffer; a run that reaches
    // past that block completes it.
    if (this.current >= 0 && offset + length > (this.current + 1) * this.blockSize) await this.flush();
  }

  /** Emits the last partly filled block. */
  async finish(): Promise<void> {
    await this.flush();
  }
}
