/**
 * convert -B and -n at the engine level: what an overlay stores, read back over its base, is the
 * source; what is left to the base is never read when the source is the base's own overlay; an
 * extended reader shows the target's tail; a raw target written in place keeps its length and
 * zeroes only what is not already zero.
 */
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { copyImage } from '../../src/stream/copy.js';
import { diffAgainstBase } from '../../src/stream/base-diff.js';
import { isZero } from '../../src/stream/zero.js';
import { BufferSource } from '../../src/stream/source.js';
import { BufferSink } from '../../src/stream/sink.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { RawWriter } from '../../src/formats/raw/writer.js';
import { ExtendedReader } from '../../src/formats/shared/extended-reader.js';
import type { Extent, FormatInfo, ImageReader, ImageWriter } from '../../src/formats/types.js';

const UNIT = 4096;

/** A reader over bytes whose map says, per unit, data or zero, at the depth `depthOf` gives. */
class MapReader implements ImageReader {
  readonly format = 'test';
  readonly virtualSize: number;
  reads: Array<[number, number]> = [];
  constructor(
    readonly bytes: Uint8Array,
    private readonly depthOf: (unit: number) => number = () => 0,
  ) {
    this.virtualSize = bytes.length;
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.reads.push([offset, length]);
    const out = into ?? new Uint8Array(length);
    out.set(this.bytes.subarray(offset, offset + length));
    return out;
  }
  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    for (let u = Math.floor(from / UNIT); u * UNIT < to; u++) {
      const s = Math.max(from, u * UNIT);
      const e = Math.min(to, (u + 1) * UNIT);
      yield { offset: s, length: e - s, kind: isZero(this.bytes.subarray(s, e)) ? 'zero' : 'data', depth: this.depthOf(u) };
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

/** Records an overlay as the calls it receives, and replays it over a base. */
class OverlayRecorder implements ImageWriter {
  readonly ops: Array<{ op: 'write' | 'zero' | 'leave'; offset: number; bytes?: Uint8Array; length: number }> = [];
  constructor(readonly blockSize: number) {}
  async write(offset: number, data: Uint8Array) {
    this.ops.push({ op: 'write', offset, length: data.length, bytes: data.slice() });
  }
  async writeZeroes(offset: number, length: number) {
    this.ops.push({ op: 'zero', offset, length });
  }
  async leave(offset: number, length: number) {
    this.ops.push({ op: 'leave', offset, length });
  }
  async finish() {}
  async abort() {}
  replay(base: Uint8Array, size: number): Uint8Array {
    const out = new Uint8Array(size);
    let pos = 0;
    for (const o of this.ops) {
      expect(o.offset).toBe(pos); // in order, without gaps
      if (o.op === 'write') out.set(o.bytes!, o.offset);
      else if (o.op === 'leave') out.set(base.subarray(o.offset, Math.min(base.length, o.offset + o.length)), o.offset);
      pos = o.offset + o.length;
    }
    expect(pos).toBe(size);
    return out;
  }
}

/** Content made of units that are zero, a pattern, or copied from another buffer. */
const units = (n: number) => fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n });

function build(kinds: number[], like?: Uint8Array): Uint8Array {
  const out = new Uint8Array(kinds.length * UNIT);
  kinds.forEach((k, u) => {
    if (k === 1) out.fill(u + 1, u * UNIT, (u + 1) * UNIT);
    if (k === 2 && like) out.set(like.subarray(u * UNIT, (u + 1) * UNIT), u * UNIT);
    if (k === 3) out[u * UNIT + 7] = 0xaa;
  });
  return out;
}

describe('copy engine with a base image (convert -B)', () => {
  it('stores exactly what differs: replayed over the base, the overlay reads as the source', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }).chain((n) => fc.tuple(units(n), units(n), fc.integer({ min: 0, max: n }))),
        fc.constantFrom(UNIT, 4 * UNIT),
        async ([baseKinds, srcKinds, baseUnits], block) => {
          const base = build(baseKinds).subarray(0, baseUnits * UNIT); // may be shorter than the source
          const src = build(srcKinds, build(baseKinds));
          const w = new OverlayRecorder(block);
          const stats = await copyImage(new MapReader(src), w, { base: { reader: new MapReader(base) }, chunkSize: 3 * block });
          expect(Buffer.from(w.replay(base, src.length)).equals(Buffer.from(src))).toBe(true);
          // Nothing equal to the base is stored.
          for (const o of w.ops.filter((x) => x.op === 'write')) {
            for (let at = 0; at < o.length; at += block) {
              const mine = o.bytes!.subarray(at, at + block);
              const theirs = new Uint8Array(mine.length);
              theirs.set(base.subarray(o.offset + at, o.offset + at + mine.length));
              expect(Buffer.from(mine).equals(Buffer.from(theirs))).toBe(false);
            }
          }
          expect(stats.unchangedBytes + stats.bytesWritten + stats.zeroBytes).toBe(src.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never reads what the source takes from the base itself (the source is its overlay)', async () => {
    const n = 16;
    const base = build([1, 1, 0, 1, 3, 0, 0, 1, 1, 1, 0, 0, 1, 3, 1, 1]);
    const own = new Set([2, 5, 9]);
    const src = base.slice();
    for (const u of own) src.fill(0xee, u * UNIT, (u + 1) * UNIT);
    const reader = new MapReader(src, (u) => (own.has(u) ? 0 : 1));
    const baseReader = new MapReader(base);
    const w = new OverlayRecorder(UNIT);
    await copyImage(reader, w, { base: { reader: baseReader, sharedDepth: 1 } });
    expect(Buffer.from(w.replay(base, n * UNIT)).equals(Buffer.from(src))).toBe(true);
    const readUnits = new Set(reader.reads.flatMap(([o, l]) => Array.from({ length: l / UNIT }, (_, i) => o / UNIT + i)));
    expect([...readUnits].sort((a, b) => a - b)).toEqual([...own].sort((a, b) => a - b));
  });

  it('refuses a writer that cannot leave ranges to a backing file', async () => {
    const sink = new BufferSink();
    const raw = new RawWriter(sink, UNIT);
    await expect(copyImage(new MapReader(new Uint8Array(UNIT)), raw, { base: { reader: new MapReader(new Uint8Array(UNIT)) } })).rejects.toThrow(/backing/);
  });
});

describe('diffAgainstBase', () => {
  it('compares where the source has data or reads zeros over base data, and covers the source in order', async () => {
    const src: Extent[] = [
      { offset: 0, length: 100, kind: 'data', depth: 0 },
      { offset: 100, length: 300, kind: 'zero', depth: 0 },
      { offset: 400, length: 100, kind: 'data', depth: 1 },
    ];
    const base: Extent[] = [
      { offset: 0, length: 150, kind: 'zero', depth: 0 },
      { offset: 150, length: 100, kind: 'data', depth: 0 },
    ];
    async function* of(x: Extent[]) {
      yield* x;
    }
    const out: Extent[] = [];
    for await (const e of diffAgainstBase(of(src), of(base), { baseSize: 250, sharedDepth: 1 })) out.push(e);
    expect(out.map((e) => [e.offset, e.length, e.kind])).toEqual([
      [0, 100, 'data'],
      [100, 50, 'zero'],
      [150, 100, 'data'],
      [250, 150, 'zero'],
      [400, 100, 'zero'],
    ]);
  });
});

describe('ExtendedReader (convert -n past the source end)', () => {
  it('reads the source, then the tail image, then zeros, and maps the same way', async () => {
    const head = new RawReader(new BufferSource(new Uint8Array(3000).fill(1)), 3000, undefined);
    const tail = new RawReader(new BufferSource(new Uint8Array(5000).fill(2)), 5000, undefined);
    const r = new ExtendedReader(head, 8000, tail);
    const all = await r.read(0, 8000);
    expect(all.subarray(0, 3000).every((b) => b === 1)).toBe(true);
    expect(all.subarray(3000, 5000).every((b) => b === 2)).toBe(true);
    expect(all.subarray(5000).every((b) => b === 0)).toBe(true);
    const ext: Extent[] = [];
    for await (const e of r.extents(1000, 7000)) ext.push(e);
    expect(ext.map((e) => [e.offset, e.length, e.kind])).toEqual([
      [1000, 2000, 'data'],
      [3000, 2000, 'data'],
      [5000, 2000, 'zero'],
    ]);
    const noTail = await new ExtendedReader(head, 4000).read(2500, 1500);
    expect(noTail.subarray(0, 500).every((b) => b === 1) && noTail.subarray(500).every((b) => b === 0)).toBe(true);
  });
});

describe('raw writer in place (convert -n into raw)', () => {
  const MiB = 1024 * 1024;
  for (const isZeroTarget of [false, true]) {
    it(`keeps the target's length and ${isZeroTarget ? 'skips zero runs (--target-is-zero)' : 'zeroes stale bytes only where needed'}`, async () => {
      const size = 4 * MiB;
      const src = new Uint8Array(size);
      src.fill(7, 0, 4096);
      src.fill(9, 3 * MiB + 4096, 3 * MiB + 8192);
      const old = new Uint8Array(size + 8192).fill(0x55);
      // Already zero, and wider than the writer's 1 MiB read-back piece: a piece inside it must not be rewritten.
      old.fill(0, MiB, 3 * MiB);
      const sink = new BufferSink();
      await sink.write(0, old);
      const write = vi.spyOn(sink, 'write');
      const w = new RawWriter(sink, old.length, false, { source: new BufferSource(old), isZero: isZeroTarget });
      await copyImage(new RawReader(new BufferSource(src), size, undefined), w);
      await w.finish();
      const out = sink.bytes();
      expect(out.length).toBe(old.length);
      expect(out.subarray(size).every((b) => b === 0x55)).toBe(true);
      if (isZeroTarget) {
        // Trusted to be zero: left alone, whatever it holds.
        expect(Buffer.from(out.subarray(4096, 3 * MiB + 4096)).equals(Buffer.from(old.subarray(4096, 3 * MiB + 4096)))).toBe(true);
      } else {
        expect(Buffer.from(out.subarray(0, size)).equals(Buffer.from(src))).toBe(true);
        // Bytes rewritten inside the already-zero stretch: fewer than the stretch holds.
        const rewritten = write.mock.calls.reduce((n, [o, d]) => n + Math.max(0, Math.min(o + d.length, 3 * MiB) - Math.max(o, MiB)), 0);
        expect(rewritten).toBeLessThan(2 * MiB);
      }
    });
  }
});
