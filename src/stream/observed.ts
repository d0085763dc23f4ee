/**
 * Promises the engine starts now and awaits later (reads ahead of the writer, writes behind it,
 * inflate and compression jobs). Node reports a rejection that has no handler when the microtask
 * queue drains, not when the promise is finally awaited; a second read failing while the engine
 * waits for the first kills the process (`unhandledRejection`) instead of failing the conversion.
 * So every such promise gets a handler the moment it exists; whoever awaits it still sees the error.
 */

/** Calls `start` and returns its promise with a handler attached; a synchronous throw becomes a rejection. */
export function observed<T>(start: () => Promise<T>): Promise<T> {
  let p: Promise<T>;
  try {
    p = start();
  } catch (e) {
    p = Promise.reject(e);
  }
  p.catch(() => {});
  return p;
}

/**
 * A set of promises in flight that can all be waited for (not only until the first failure), so
 * that no buffer they use is touched after the caller has returned.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** Starts a job and keeps it until it settles; the promise returned already has a handler. */
  start<T>(job: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = job();
    } catch (e) {
      p = Promise.reject(e);
    }
    // This handler is the one the promise needs from the start.
    const settled = p.then(
      () => void this.running.delete(settled),
      () => void this.running.delete(settled),
    );
    this.running.add(settled);
    return p;
  }

  get size(): number {
    return this.running.size;
  }

  /** Resolves when everything started so far has settled, however it ended. */
  async settle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }
}
