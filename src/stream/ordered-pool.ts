/**
 * Runs up to `capacity` asynchronous jobs at once (compression on the libuv pool) and hands their
 * results to `consume` strictly in submission order. `submit` waits while the pool is full: that is
 * the backpressure that keeps memory at `capacity` blocks.
 */
import { observed } from './observed.js';

export class OrderedPool<T> {
  private readonly queue: Array<{ job: Promise<T>; consume: (r: T) => Promise<void> | void }> = [];
  private failure: unknown;

  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('pool capacity must be at least 1');
  }

  async submit(start: () => Promise<T>, consume: (r: T) => Promise<void> | void): Promise<void> {
    if (this.failure) throw this.failure;
    // Consumed later, in order: it needs a handler now (observed.ts).
    const job = observed(start);
    this.queue.push({ job, consume });
    while (this.queue.length >= this.capacity) await this.consumeOne();
  }

  private async consumeOne(): Promise<void> {
    const head = this.queue.shift()!;
    try {
      await head.consume(await head.job);
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
  }

  /** Consumes everything still queued, in order. */
  async drain(): Promise<void> {
    while (this.queue.length) await this.consumeOne();
  }

  /** Waits for running jobs and forgets their results (used on abort). */
  async discard(): Promise<void> {
    const jobs = this.queue.splice(0).map((q) => q.job);
    await Promise.allSettled(jobs);
  }
}
