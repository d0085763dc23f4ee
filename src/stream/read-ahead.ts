/**
 * The copy engine's reads: started in offset order ahead of the writer, handed over in the same
 * order, into buffers from a fixed pool, so memory is `depth` × chunk whatever the image size.
 * For an overlay output each read is paired with a read of the base image's same range.
 */
import type { ImageReader } from '../formats/types.js';
import { readZeroExtended } from '../formats/shared/extended-reader.js';
import { InFlight } from './observed.js';

export interface ChunkBytes {
  offset: number;
  bytes: Uint8Array;
  /** The base image's bytes of the same range (overlay output). */
  baseBytes?: Uint8Array;
  /** Gives the chunk's buffers back to the pool: only once nothing reads or writes them any more. */
  release(): void;
}

interface PendingRead {
  offset: number;
  bytes: Promise<Uint8Array>;
  baseBytes?: Promise<Uint8Array>;
  buffers: Uint8Array[];
}

export class ReadAhead {
  private readonly free: Uint8Array[] = [];
  private readonly queue: PendingRead[] = [];
  /** Every read started and not yet settled, handed over or not. */
  private readonly running = new InFlight();

  constructor(
    private readonly reader: ImageReader,
    private readonly base: ImageReader | undefined,
    private readonly chunk: number,
    /** Reads in flight before the oldest must be handed over. */
    readonly depth: number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  get full(): boolean {
    return this.queue.length >= this.depth;
  }

  private buffer(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.chunk);
  }

  /** Starts reading [offset, offset + length) (at most one chunk). */
  start(offset: number, length: number): void {
    const buf = this.buffer();
    const read: PendingRead = { offset, buffers: [buf], bytes: this.running.start(() => this.reader.read(offset, length, buf.subarray(0, length))) };
    if (this.base) {
      const base = this.base;
      const baseBuf = this.buffer();
      read.buffers.push(baseBuf);
      read.baseBytes = this.running.start(() => readZeroExtended(base, offset, baseBuf.subarray(0, length)));
    }
    this.queue.push(read);
  }

  /** The oldest read's bytes, once they are in; rejects with its failure (the others keep running until settle()). */
  async next(): Promise<ChunkBytes> {
    const read = this.queue.shift()!;
    // Awaited one after the other (Promise.all costs ticks per chunk); both are tracked for settle() either way.
    const bytes = await read.bytes;
    const baseBytes = read.baseBytes && (await read.baseBytes);
    return { offset: read.offset, bytes, baseBytes, release: () => this.free.push(...read.buffers) };
  }

  /** Waits for every read started, so that no buffer is written after the engine has returned. */
  settle(): Promise<void> {
    return this.running.settle();
  }
}
