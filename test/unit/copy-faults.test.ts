/**
 * The copy engine under failure: a read (of the source or of the base), a write, a writeZeroes, a
 * leave, the extent walk or the progress callback fails at any point while other reads and writes
 * are in flight. copyImage must reject once, with that failure, after every call it started has
 * settled, and no promise may be left without a handler on the way (Node reports those as
 * `unhandledRejection`, which kills a CLI and every other disk of a pipeline).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyImage } from '../../src/stream/copy.js';
import type { Extent, FormatInfo, ImageReader, ImageWriter } from '../../src/formats/types.js';

const UNIT = 64 * 1024;
const UNITS = 24;

class Injected extends Error {}

/** Where the failure goes: the nth call of one kind (1-based), and the calls' delays. */
interface Fault {
  at: 'read' | 'baseRead' | 'write' | 'writeZeroes' | 'leave' | 'extents' | 'progress';
  nth: number;
  /** Later calls of the same kind fail too: several failures in flight at once. */
  andLater: boolean;
  delays: number[];
}

class Calls {
  active = 0;
  count: Record<string, number> = {};
  failures = 0;
  constructor(private readonly fault: Fault) {}
  async run<T>(kind: Fault['at'], body: () => T): Promise<T> {
    const n = (this.count[kind] = (this.count[kind] ?? 0) + 1);
    const total = Object.values(this.count).reduce((a, b) => a + b, 0);
    this.active++;
    try {
      await new Promise((r) => setTimeout(r, this.fault.delays[total % this.fault.delays.length]));
      if (this.fault.at === kind && (n === this.fault.nth || (this.fault.andLater && n > this.fault.nth))) {
        this.failures++;
        throw new Injected(`${kind} #${n} failed`);
      }
      return body();
    } finally {
      this.active--;
    }
  }
}

/** Data in the even units of four, zeros in the rest; the base differs from the source in every third unit. */
class TestReader implements ImageReader {
  readonly format = 'test';
  readonly virtualSize = UNIT * UNITS;
  constructor(
    private readonly calls: Calls,
    private readonly kind: 'read' | 'baseRead',
  ) {}
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.calls.run(this.kind, () => {
      const out = into ?? new Uint8Array(length);
      out.fill(this.kind === 'read' ? 0x5a : 0xa5);
      return out;
    });
  }
  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    for (let u = Math.floor(from / UNIT); u * UNIT < to; u++) {
      if (this.kind === 'read') await this.calls.run('extents', () => undefined);
      yield { offset: u * UNIT, length: UNIT, kind: u % 4 < 2 ? 'data' : 'unallocated', depth: 0 };
    }
  }
  info(): FormatInfo {
    return { format: 'test', virtualSize: this.virtualSize };
  }
  files(): string[] {
    return [];
  }
  async close(): Promise<void> {}
}

class TestWriter implements ImageWriter {
  readonly blockSize = 512;
  constructor(
    private readonly calls: Calls,
    readonly parallelWrites: number,
  ) {}
  write(_offset: number, _data: Uint8Array): Promise<void> {
    return this.calls.run('write', () => undefined);
  }
  writeZeroes(_offset: number, _length: number): Promise<void> {
    return this.calls.run('writeZeroes', () => undefined);
  }
  leave(_offset: number, _length: number): Promise<void> {
    return this.calls.run('leave', () => undefined);
  }
  async finish(): Promise<void> {}
  async abort(): Promise<void> {}
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

/** Long enough for Node to report a rejection nobody handled. */
const quiet = () => new Promise((r) => setTimeout(r, 15));

describe('copyImage under injected failures', () => {
  it('rejects once with the failure, after every call has settled, and leaves no rejection unhandled', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          at: fc.constantFrom<Fault['at']>('read', 'baseRead', 'write', 'writeZeroes', 'leave', 'extents', 'progress'),
          nth: fc.integer({ min: 1, max: 12 }),
          andLater: fc.boolean(),
          delays: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 7 }),
        }),
        fc.constantFrom(1, 4),
        fc.constantFrom(1, 2, 4, 8),
        fc.constantFrom(UNIT, 2 * UNIT),
        async (fault, parallelWrites, readAhead, chunkSize) => {
          const overlay = fault.at === 'baseRead' || fault.at === 'leave';
          const calls = new Calls(fault);
          let progressCalls = 0;
          const run = copyImage(new TestReader(calls, 'read'), new TestWriter(calls, parallelWrites), {
            readAhead,
            chunkSize,
            base: overlay ? { reader: new TestReader(calls, 'baseRead') } : undefined,
            onProgress: () => {
              if (fault.at === 'progress' && ++progressCalls >= fault.nth) throw new Injected(`progress #${progressCalls} failed`);
            },
          });
          const outcome = await run.then(
            () => 'resolved' as const,
            (e: unknown) => e,
          );
          const inFlightAtEnd = calls.active;
          await quiet();
          expect(unhandled).toEqual([]);
          if (outcome === 'resolved') {
            // The failure point lies past the calls this copy makes.
            expect(calls.failures).toBe(0);
            expect(fault.at === 'progress' ? progressCalls < fault.nth : (calls.count[fault.at] ?? 0) < fault.nth).toBe(true);
            return;
          }
          expect(outcome).toBeInstanceOf(Injected);
          expect(inFlightAtEnd).toBe(0);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('cancels cleanly while reads and writes are in flight', async () => {
    for (const abortAfter of [0, 1, 3, 7]) {
      const calls = new Calls({ at: 'read', nth: Infinity, andLater: false, delays: [1, 0, 2] });
      const ac = new AbortController();
      let seen = 0;
      const run = copyImage(new TestReader(calls, 'read'), new TestWriter(calls, 4), {
        chunkSize: UNIT,
        signal: ac.signal,
        onProgress: () => {
          if (seen++ === abortAfter) ac.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortedError' });
      expect(calls.active).toBe(0);
      await quiet();
      expect(unhandled).toEqual([]);
    }
  });
});
