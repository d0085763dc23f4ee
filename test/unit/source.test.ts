import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { StreamSource, BufferSource } from '../../src/stream/source.js';
import { StreamSink } from '../../src/stream/sink.js';
import { TruncatedImageError, IoError } from '../../src/errors.js';
import { PassThrough } from 'node:stream';

function chunked(data: Uint8Array, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]);
    parts.push(Buffer.from(data.subarray(off, off + n)));
    off += n;
  }
  return Readable.from(parts);
}

describe('byte sources', () => {
  it('a buffer source reads exactly or throws TruncatedImageError with the offset', async () => {
    const s = new BufferSource(new Uint8Array(10), 'b.img');
    await expect(s.read(8, 4)).rejects.toBeInstanceOf(TruncatedImageError);
    await expect(s.read(8, 4)).rejects.toMatchObject({ file: 'b.img', offset: 10 });
    expect((await s.readUpTo(8, 4)).length).toBe(2);
  });

  it('a stream source serves forward reads exactly, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 10 }),
        async (data, chunks, reads) => {
          const src = new StreamSource(chunked(data, chunks), 'pipe', 16);
          let pos = 0;
          for (const r of reads) {
            const want = Math.min(r, data.length - pos);
            const got = await src.read(pos, want);
            expect(Buffer.from(got).equals(Buffer.from(data.subarray(pos, pos + want)))).toBe(true);
            pos += want;
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a stream source re-serves its retained head, skips forward, and refuses to go back', async () => {
    const data = new Uint8Array(1000).map((_, i) => i & 0xff);
    const src = new StreamSource(chunked(data, [100]), 'pipe', 64);
    expect([...(await src.read(0, 10))]).toEqual([...data.subarray(0, 10)]);
    expect([...(await src.read(0, 64))]).toEqual([...data.subarray(0, 64)]); // head again
    expect([...(await src.read(500, 4))]).toEqual([...data.subarray(500, 504)]);
    await expect(src.read(200, 4)).rejects.toBeInstanceOf(IoError);
    await expect(src.read(990, 20)).rejects.toBeInstanceOf(TruncatedImageError);
  });
});

describe('stream sink', () => {
  it('fills gaps with zeros and pads to the final length', async () => {
    const pt = new PassThrough();
    const parts: Buffer[] = [];
    pt.on('data', (c: Buffer) => parts.push(c));
    const sink = new StreamSink(pt, 'out');
    await sink.write(3, new Uint8Array([1, 2]));
    await sink.write(10, new Uint8Array([3]));
    await sink.setLength(16);
    await expect(sink.write(0, new Uint8Array([9]))).rejects.toBeInstanceOf(IoError);
    await sink.close();
    expect([...Buffer.concat(parts)]).toEqual([0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0]);
  });
});
