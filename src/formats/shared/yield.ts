/**
 * Cooperative yielding for long metadata walks (a table of millions of entries, a map of a huge
 * sparse disk). Node runs signal handlers (the CLI's SIGINT cleanup), timers and I/O callbacks only
 * between macrotasks; a walk whose awaits all settle at once (cached tables, in-memory arrays) is one
 * long chain of microtasks and starves them, so Ctrl-C would wait for the walk to end.
 */
import { setImmediate as immediate } from 'node:timers/promises';

/** Longest stretch of a walk without letting the event loop turn: short enough that Ctrl-C feels immediate. */
const SLICE_MS = 25;
/** Calls between clock readings: performance.now() is cheap but not free in a per-entry loop. */
const CHECK_EVERY = 1024;

export class Yielder {
  private calls = 0;
  private last = performance.now();

  /** True when the walk has run a full slice; then `await pause()`. Cheap enough to call per step. */
  due(): boolean {
    if (++this.calls % CHECK_EVERY !== 0) return false;
    return this.overdue();
  }

  /** Reads the clock at once: for walks whose every step is long (a chunk of a table). */
  overdue(): boolean {
    return performance.now() - this.last >= SLICE_MS;
  }

  /** Lets timers, I/O callbacks and signal handlers run, then resumes the walk. */
  async pause(): Promise<void> {
    await immediate();
    this.last = performance.now();
  }
}
