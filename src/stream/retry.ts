/**
 * Retry with exponential backoff and full jitter for transient I/O errors. Permanent errors
 * (EIO, ENOSPC, corrupt data) are passed through at once: retrying them only delays the message.
 */
import { IoError } from '../errors.js';
import type { ByteSource } from './source.js';
import type { ByteSink } from './sink.js';

export const TRANSIENT_ERRNOS = new Set(['EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT', 'EWOULDBLOCK']);

export interface RetryPolicy {
  attempts: number; // total tries, including the first
  baseDelayMs: number;
  maxDelayMs: number;
  /** Injected for tests; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 50, maxDelayMs: 2000 };

export function isTransient(e: unknown): boolean {
  const code = e instanceof IoError ? e.errno : (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && TRANSIENT_ERRNOS.has(code);
}

/** Delay before retry number `attempt` (1-based): uniform in [0, min(max, base·2^(attempt-1))]. */
export function backoffDelay(attempt: number, p: RetryPolicy): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor((p.random ?? Math.random)() * cap);
}

export async function withRetry<T>(op: () => Promise<T>, p: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  const sleep = p.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (attempt >= p.attempts || !isTransient(e)) throw e;
      await sleep(backoffDelay(attempt, p));
    }
  }
}

/** Wraps a source so each read is retried on transient errors. */
export function retryingSource(src: ByteSource, p: RetryPolicy = DEFAULT_RETRY): ByteSource {
  return {
    get name() {
      return src.name;
    },
    get size() {
      return src.size;
    },
    get seekable() {
      return src.seekable;
    },
    read: (o, l, into) => withRetry(() => src.read(o, l, into), p),
    readUpTo: (o, l, into) => withRetry(() => src.readUpTo(o, l, into), p),
    close: () => src.close(),
  };
}

/** Wraps a sink so each write is retried on transient errors (writes at an offset are idempotent). */
export function retryingSink(sink: ByteSink, p: RetryPolicy = DEFAULT_RETRY): ByteSink {
  return {
    get name() {
      return sink.name;
    },
    get seekable() {
      return sink.seekable;
    },
    write: (o, d) => withRetry(() => sink.write(o, d), sink.seekable ? p : { ...p, attempts: 1 }),
    setLength: (l) => withRetry(() => sink.setLength(l), p),
    sync: () => withRetry(() => sink.sync(), p),
    close: () => sink.close(),
  };
}
