import { describe, expect, it } from 'vitest';
import { backoffDelay, retryingSource, withRetry } from '../../src/stream/retry.js';
import { BufferSource, type ByteSource } from '../../src/stream/source.js';
import { IoError } from '../../src/errors.js';

/** A source that fails its first `failures` reads with `errno`, then works. */
function flaky(inner: ByteSource, failures: number, errno: string): ByteSource & { calls: number } {
  const s = {
    calls: 0,
    name: inner.name,
    size: inner.size,
    seekable: true,
    async read(o: number, l: number, into?: Uint8Array) {
      s.calls++;
      if (s.calls <= failures) throw new IoError('read failed', { errno, file: inner.name, offset: o });
      return inner.read(o, l, into);
    },
    readUpTo: (o: number, l: number, into?: Uint8Array) => inner.readUpTo(o, l, into),
    close: () => inner.close(),
  };
  return s;
}

describe('retry with backoff', () => {
  const data = new Uint8Array([1, 2, 3, 4]);
  const noSleep = { attempts: 5, baseDelayMs: 10, maxDelayMs: 100, sleep: async () => {} };

  it('retries transient errors and then returns the exact data', async () => {
    for (const errno of ['EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT']) {
      const src = flaky(new BufferSource(data), 3, errno);
      const r = await retryingSource(src, noSleep).read(0, 4);
      expect([...r]).toEqual([1, 2, 3, 4]);
      expect(src.calls).toBe(4);
    }
  });

  it('gives up after the configured attempts', async () => {
    const src = flaky(new BufferSource(data), 10, 'EAGAIN');
    await expect(retryingSource(src, noSleep).read(0, 4)).rejects.toMatchObject({ errno: 'EAGAIN' });
    expect(src.calls).toBe(5);
  });

  it('does not retry permanent errors', async () => {
    for (const errno of ['EIO', 'ENOSPC']) {
      const src = flaky(new BufferSource(data), 1, errno);
      await expect(retryingSource(src, noSleep).read(0, 4)).rejects.toMatchObject({ errno });
      expect(src.calls).toBe(1);
    }
  });

  it('backs off exponentially with full jitter, capped', () => {
    const p = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 };
    expect(backoffDelay(1, p)).toBe(99);
    expect(backoffDelay(2, p)).toBe(199);
    expect(backoffDelay(3, p)).toBe(399);
    expect(backoffDelay(8, p)).toBe(999);
    expect(backoffDelay(3, { ...p, random: () => 0 })).toBe(0);
  });

  it('sleeps between attempts for the computed delays', async () => {
    const slept: number[] = [];
    let n = 0;
    const r = await withRetry(
      async () => {
        if (++n < 3) throw Object.assign(new Error('busy'), { code: 'EBUSY' });
        return 'ok';
      },
      { attempts: 5, baseDelayMs: 10, maxDelayMs: 1000, random: () => 0.5, sleep: async (ms) => void slept.push(ms) },
    );
    expect(r).toBe('ok');
    expect(slept).toEqual([5, 10]);
  });
});
