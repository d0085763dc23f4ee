/**
 * The copy engine's steps on their own: cutting runs into reads, cutting a chunk into pieces,
 * reads handed over in order with pooled buffers, writes kept within the writer's window; and the
 * other places where the engine starts a promise and awaits it later (the ordered compression
 * pool, write-behind), which must never leave a rejection unhandled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allData, chunkLayout, chunkRanges } from '../../src/stream/copy-runs.js';
import { overlayPieces, zeroPieces } from '../../src/stream/copy-pieces.js';
import { ReadAhead } from '../../src/stream/read-ahead.js';
import { WriteWindow } from '../../src/stream/write-window.js';
import { OrderedPool } from '../../src/stream/ordered-pool.js';
import { WriteBehind } from '../../src/formats/shared/write-behind.js';
import { BufferSource } from '../../src/stream/source.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import type { Extent, ImageWriter } from '../../src/formats/types.js';
import type { ByteSink } from '../../src/stream/sink.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));
const tick = (ms = 2) => new Promise((r) => setTimeout(r, ms));

describe('copy-runs', () => {
  it('chunkRanges cuts a run at absolute multiples of the chunk, covering it exactly', () => {
    fc.assert(
      fc.property(fc.nat(1 << 24), fc.integer({ min: 1, max: 1 << 20 }), fc.constantFrom(4096, 65536, 1 << 21), (offset, length, chunk) => {
        const ranges = [...chunkRanges({ offset, length, data: true }, chunk)];
        expect(ranges[0][0]).toBe(offset);
        expect(ranges[ranges.length - 1][1]).toBe(offset + length);
        for (const [i, [from, to]] of ranges.entries()) {
          expect(to).toBeGreaterThan(from);
          expect(to - from).toBeLessThanOrEqual(chunk);
          if (i > 0) expect(from).toBe(ranges[i - 1][1]);
          if (i < ranges.length - 1) expect(to % chunk).toBe(0);
        }
      }),
    );
  });

  it('chunkLayout rounds down to whole writer units, at least one', () => {
    expect(chunkLayout(2 << 20, 65536)).toBe(2 << 20);
    expect(chunkLayout(100_000, 65536)).toBe(65536);
    expect(chunkLayout(1000, 65536)).toBe(65536);
  });

  it('allData (-S 0) turns holes and zeros into data, keeping offsets', async () => {
    async function* src(): AsyncGenerator<Extent> {
      yield { offset: 0, length: 10, kind: 'unallocated', depth: 1 };
      yield { offset: 10, length: 5, kind: 'zero', depth: 0 };
      yield { offset: 15, length: 5, kind: 'data', depth: 0 };
    }
    const out: Extent[] = [];
    for await (const e of allData(src())) out.push(e);
    expect(out.map((e) => [e.offset, e.length, e.kind])).toEqual([
      [0, 10, 'data'],
      [10, 5, 'data'],
      [15, 5, 'data'],
    ]);
  });
});

describe('copy-pieces', () => {
  it('zeroPieces alternates data and zero runs covering the chunk; unit 0 is all data', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }), (units) => {
        const bytes = new Uint8Array(units.length * 4096);
        units.forEach((d, i) => d && (bytes[i * 4096 + 100] = 1));
        const pieces = zeroPieces(bytes, 4096);
        expect(pieces[0][1]).toBe(0);
        expect(pieces[pieces.length - 1][2]).toBe(bytes.length);
        for (const [i, [kind, s, e]] of pieces.entries()) {
          if (i > 0) expect(pieces[i - 1][0]).not.toBe(kind);
          for (let u = s / 4096; u < e / 4096; u++) expect(units[u]).toBe(kind === 'data');
        }
        expect(zeroPieces(bytes, 0)).toEqual([['data', 0, bytes.length]]);
      }),
    );
  });

  it('overlayPieces: same as the base → leave, zeros → zero, else data, per block', () => {
    const block = 512;
    const src = new Uint8Array(4 * block);
    const base = new Uint8Array(4 * block);
    src.fill(7, 0, block); // data
    base.fill(7, 0, block);
    // block 1: zero in both → leave; block 2: zero over data → zero; block 3: differs → data
    base.fill(9, 2 * block, 3 * block);
    src.fill(3, 3 * block, 4 * block);
    expect(overlayPieces(src, base, block)).toEqual([
      ['leave', 0, 2 * block],
      ['zero', 2 * block, 3 * block],
      ['data', 3 * block, 4 * block],
    ]);
  });
});

describe('ReadAhead', () => {
  it('hands reads over in start order and reuses released buffers', async () => {
    const bytes = Uint8Array.from({ length: 8192 }, (_, i) => i % 251);
    const reads = new ReadAhead(new RawReader(new BufferSource(bytes), bytes.length, undefined), undefined, 1024, 3);
    for (let at = 0; at < 3 * 1024; at += 1024) reads.start(at, 1024);
    expect(reads.full).toBe(true);
    const first = await reads.next();
    expect(first.offset).toBe(0);
    expect([...first.bytes.subarray(0, 4)]).toEqual([0, 1, 2, 3]);
    const buffer = first.bytes.buffer;
    first.release();
    reads.start(3 * 1024, 1024);
    for (const want of [1024, 2048, 3072]) {
      const c = await reads.next();
      expect(c.offset).toBe(want);
      expect(c.bytes[0]).toBe(want % 251);
      if (want === 3072) expect(c.bytes.buffer).toBe(buffer);
    }
  });
});

describe('WriteWindow', () => {
  it('keeps at most `width` chunks in flight and reports completion in offset order', async () => {
    let active = 0;
    let peak = 0;
    const writer: ImageWriter = {
      parallelWrites: 3,
      write: async () => {
        peak = Math.max(peak, ++active);
        await tick(1);
        active--;
      },
      writeZeroes: async () => {},
      finish: async () => {},
      abort: async () => {},
    };
    const counts = { bytesWritten: 0, zeroBytes: 0, unchangedBytes: 0 };
    const done: number[] = [];
    const window = new WriteWindow(writer, counts, (end) => done.push(end));
    for (let i = 0; i < 10; i++) await window.queue(() => window.putPieces(i * 10, new Uint8Array(10), [['data', 0, 10]]), (i + 1) * 10);
    await window.drain();
    expect(peak).toBeLessThanOrEqual(3);
    expect(done).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 10));
    expect(counts.bytesWritten).toBe(100);
  });
});

describe('promises started ahead never go unhandled', () => {
  it('OrderedPool: several jobs failing while the first is consumed', async () => {
    const pool = new OrderedPool<number>(4);
    const fail = (n: number) => async () => {
      await tick(n);
      throw new Error(`job ${n}`);
    };
    const run = (async () => {
      for (let i = 0; i < 8; i++) await pool.submit(fail(8 - i), () => {});
      await pool.drain();
    })();
    await expect(run).rejects.toThrow(/job/);
    await pool.discard();
    await tick(15);
    expect(unhandled).toEqual([]);
  });

  it('WriteBehind: several tracked writes failing at once fail the calls, nothing unhandled', async () => {
    const behind = new WriteBehind();
    let n = 0;
    const sink: ByteSink = {
      name: 'sink',
      seekable: true,
      write: async () => {
        const k = ++n;
        await tick(5 - (k % 4));
        throw new Error(`write ${k}`);
      },
      setLength: async () => {},
      sync: async () => {},
      close: async () => {},
    };
    const calls = Array.from({ length: 6 }, (_, i) => behind.call(() => behind.write(sink, i * 512, new Uint8Array(512))));
    const settled = await Promise.allSettled(calls);
    expect(settled.every((r) => r.status === 'rejected')).toBe(true);
    await expect(behind.drain()).rejects.toThrow(/write/);
    await tick(15);
    expect(unhandled).toEqual([]);
  });
});
