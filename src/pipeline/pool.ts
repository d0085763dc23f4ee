/**
 * Bounded concurrency over an async sequence: `limit` workers pull the next item when they are
 * free, so at most `limit` items are in progress and only as many are read from the plan as
 * are being worked on. Workers share one iterator through next() (an async generator queues
 * concurrent next() calls), not `for await`, whose early exit would close it for the others.
 */
export async function forEachLimited<T>(
  items: AsyncIterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && !signal?.aborted) {
      let next: IteratorResult<T>;
      try {
        next = await it.next();
      } catch (e) {
        failure ??= { error: e };
        return;
      }
      if (next.done) return;
      try {
        await work(next.value);
      } catch (e) {
        // `work` reports per-item failures itself; an error here is a bug or a fatal
        // condition (state file unwritable), so stop handing out items.
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure || signal?.aborted) await it.return?.(undefined);
  if (failure) throw failure.error;
}
