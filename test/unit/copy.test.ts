import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { alignedRuns, copyImage } from '../../src/stream/copy.js';
import { BufferSource } from '../../src/stream/source.js';
import { BufferSink } from '../../src/stream/sink.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { RawWriter } from '../../src/formats/raw/writer.js';
import type { Extent, ImageWriter } from '../../src/formats/types.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* of(extents: Extent[]): AsyncGenerator<Extent> {
  yield* extents;
}

/** Random sparse content: a few data runs in a zero background. */
const sparseImage = fc
  .record({
    size: fc.integer({ min: 1, max: 300_000 }),
    runs: fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 40_000 }), byte: fc.integer({ min: 1, max: 255 }) }), {
      maxLength: 8,
    }),
  })
  .map(({ size, runs }) => {
    const data = new Uint8Array(size);
    for (const r of runs) {
      const at = r.at % size;
      data.fill(r.byte, at, Math.min(size, at + r.len));
    }
    return data;
  });

describe('alignedRuns', () => {
  it('widens data to the block size and keeps runs contiguous, ordered and covering', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ len: fc.integer({ min: 1, max: 5000 }), kind: fc.constantFrom('data', 'zero', 'unallocated') }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.constantFrom(512, 4096, 65536),
        fc.constantFrom(1024, 8192, 8 * 1024 * 1024),
        async (parts, align, release) => {
          let off = 0;
          const extents: Extent[] = parts.map((p) => {
            const e = { offset: off, length: p.len, kind: p.kind as Extent['kind'], depth: 0 };
            off += p.len;
            return e;
          });
          const size = off;
          const runs = await collect(alignedRuns(of(extents), align, size, release));
          let pos = 0;
          for (const r of runs) {
            expect(r.offset).toBe(pos);
            expect(r.length).toBeGreaterThan(0);
            if (r.data) {
              expect(r.offset % align).toBe(0);
              expect((r.offset + r.length) % align === 0 || r.offset + r.length === size).toBe(true);
            }
            pos += r.length;
          }
          expect(pos).toBe(size);
          // Every input data byte is inside an output data run.
          for (const e of extents.filter((x) => x.kind === 'data')) {
            for (const b of [e.offset, e.offset + e.length - 1]) {
              expect(runs.some((r) => r.data && r.offset <= b && b < r.offset + r.length)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('copy engine with raw', () => {
  it('round-trips random sparse content through raw reader and writer, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(sparseImage, fc.constantFrom(512, 4096, 65536), fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 512, 4096), async (data, chunk, readAhead, zg) => {
        const reader = new RawReader(new BufferSource(data), data.length, undefined);
        const sink = new BufferSink();
        const writer = new RawWriter(sink, data.length);
        const stats = await copyImage(reader, writer, { chunkSize: chunk, readAhead, zeroGranularity: zg });
        await writer.finish();
        expect(Buffer.from(sink.bytes()).equals(Buffer.from(data))).toBe(true);
        expect(stats.bytesRead).toBe(data.length);
      }),
      { numRuns: 150 },
    );
  });

  it('turns zero runs into writeZeroes and never writes zeros as data', async () => {
    const data = new Uint8Array(1 << 20);
    data.fill(7, 100_000, 100_100);
    const calls: Array<[string, number, number]> = [];
    const writer: ImageWriter = {
      async write(o, d) {
        calls.push(['data', o, d.length]);
      },
      async writeZeroes(o, l) {
        calls.push(['zero', o, l]);
      },
      async finish() {},
      async abort() {},
    };
    await copyImage(new RawReader(new BufferSource(data), data.length, undefined), writer, { chunkSize: 65536 });
    const dataCalls = calls.filter((c) => c[0] === 'data');
    expect(dataCalls).toEqual([['data', 98304, 4096]]);
    const covered = calls.reduce((n, c) => n + c[2], 0);
    expect(covered).toBe(data.length);
    // Offsets strictly increasing.
    for (let i = 1; i < calls.length; i++) expect(calls[i][1]).toBeGreaterThan(calls[i - 1][1]);
  });

  it('hands a writer only whole blocks of its block size', async () => {
    const data = new Uint8Array(300_000);
    data.fill(1, 70_000, 70_001);
    const seen: number[][] = [];
    const writer: ImageWriter = {
      blockSize: 65536,
      async write(o, d) {
        seen.push([o, d.length]);
      },
      async writeZeroes(o, l) {
        seen.push([o, l]);
      },
      async finish() {},
      async abort() {},
    };
    await copyImage(new RawReader(new BufferSource(data), data.length, undefined), writer, { chunkSize: 1 << 20 });
    for (const [o, l] of seen) {
      expect(o % 65536).toBe(0);
      expect(l % 65536 === 0 || o + l === data.length).toBe(true);
    }
  });

  it('stops on abort with a typed error', async () => {
    const data = new Uint8Array(1 << 20).fill(1);
    const ac = new AbortController();
    ac.abort();
    const writer = new RawWriter(new BufferSink(), data.length);
    await expect(copyImage(new RawReader(new BufferSource(data), data.length, undefined), writer, { signal: ac.signal })).rejects.toMatchObject({
      name: 'AbortedError',
    });
  });
});
