/**
 * The plan's retry policy applied to a whole stage: a transient failure (EAGAIN, EBUSY,
 * ETIMEDOUT… as src/stream/retry.ts classifies them) reruns the stage after a backoff with
 * full jitter; anything else fails the disk at once. Rerunning a stage is safe because every
 * stage either only reads or writes through an atomic output that a failure discards.
 * Unlike withRetry, each retry is reported, so the event stream shows why a disk was slow.
 */
import { AbortedError } from '../errors.js';
import { backoffDelay, isTransient, type RetryPolicy } from '../stream/retry.js';

export interface RetryHooks {
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  signal?: AbortSignal;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('cancelled while waiting to retry'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError('cancelled while waiting to retry'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `op` up to `policy.attempts` times; `attempt` is 1-based. */
export async function retryStage<T>(op: (attempt: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  const wait = policy.sleep ?? ((ms: number) => sleep(ms, hooks.signal));
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (e) {
      if (attempt >= policy.attempts || !isTransient(e) || hooks.signal?.aborted) throw e;
      const delay = backoffDelay(attempt, policy);
      hooks.onRetry?.(attempt, delay, e);
      await wait(delay);
    }
  }
}
