/**
 * The copy engine's writes: each chunk's pieces handed to the writer in offset order, with up to
 * `width` chunks' calls in flight (ImageWriter.parallelWrites), so that writes overlap with each
 * other and with the reads. Awaiting the oldest when the window is full is the backpressure on
 * the reads.
 */
import type { ImageWriter } from '../formats/types.js';
import type { Piece, PieceKind } from './copy-pieces.js';
import { InFlight } from './observed.js';

/** What the writer was given, by kind (CopyStats' counters). */
export interface WriteCounts {
  bytesWritten: number;
  zeroBytes: number;
  unchangedBytes: number;
}

export class WriteWindow {
  /** Queued chunks in offset order, with the virtual offset each one completes. */
  private readonly queued: Array<{ done: Promise<void>; end: number }> = [];
  private readonly running = new InFlight();

  constructor(
    private readonly writer: ImageWriter,
    private readonly counts: WriteCounts,
    /** Called in offset order as chunks complete: progress, and a chance to stop (it may throw). */
    private readonly onDone: (end: number) => void,
  ) {}

  /** Chunks whose calls may be in flight at once. */
  get width(): number {
    return Math.max(1, this.writer.parallelWrites ?? 1);
  }

  /** One call to the writer: data, zeros, or (overlay output) a range left to the base. */
  async put(kind: PieceKind, offset: number, length: number, data?: Uint8Array): Promise<void> {
    if (kind === 'data') {
      await this.writer.write(offset, data!);
      this.counts.bytesWritten += length;
    } else if (kind === 'zero') {
      await this.writer.writeZeroes(offset, length);
      this.counts.zeroBytes += length;
    } else {
      await this.writer.leave!(offset, length);
      this.counts.unchangedBytes += length;
    }
  }

  /**
   * A chunk's pieces, in order. A writer that takes several calls in flight gets them all now, so
   * calls stay in offset order across chunks; the result waits for all of them (not just the first
   * failure), because the chunk's buffer goes back to the pool when it resolves.
   */
  async putPieces(offset: number, bytes: Uint8Array, pieces: Piece[]): Promise<void> {
    if (this.width === 1) {
      for (const [k, s, e] of pieces) await this.put(k, offset + s, e - s, bytes.subarray(s, e));
      return;
    }
    const settled = await Promise.allSettled(pieces.map(([k, s, e]) => this.put(k, offset + s, e - s, bytes.subarray(s, e))));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Queues `start`'s calls (one chunk's, or one run's) behind those in flight, then waits while
   * the window is full. The next call to the writer may be made before these settle.
   */
  async queue(start: () => Promise<void>, end: number): Promise<void> {
    this.queued.push({ done: this.running.start(start), end });
    while (this.queued.length >= this.width) await this.settleOldest();
  }

  private async settleOldest(): Promise<void> {
    const w = this.queued.shift()!;
    await w.done;
    this.onDone(w.end);
  }

  /** Waits for everything queued, in order; rejects with the first failure met. */
  async drain(): Promise<void> {
    while (this.queued.length) await this.settleOldest();
  }

  /** Waits for every call made, failed or not (after a failure, before the engine returns). */
  settle(): Promise<void> {
    return this.running.settle();
  }
}
