/**
 * A source image for property tests: random data regions in a zero disk, held in memory, whose
 * extents say exactly where the data is (so writers are fed unallocated runs, not only zero
 * detection), and whose content is known for comparison. Shared with test/vdi.
 */
import { allData } from '../../src/stream/copy-runs.js';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { expect } from 'vitest';
import { GuestkitError } from '../../src/errors.js';
import type { Extent, FormatDriver, FormatInfo, ImageReader } from '../../src/formats/types.js';
import { copyImage } from '../../src/stream/copy.js';
import { BufferSink, StreamSink, type ByteSink } from '../../src/stream/sink.js';
import { pseudoRandom } from '../helpers/work.js';

export interface Region {
  at: number;
  len: number;
  seed: number;
}

export class SparseSource implements ImageReader {
  readonly format = 'raw';
  readonly bytes: Uint8Array;
  private readonly runs: Array<[number, number]>;

  constructor(
    readonly virtualSize: number,
    regions: Region[],
  ) {
    this.bytes = new Uint8Array(virtualSize);
    const spans: Array<[number, number]> = [];
    for (const r of regions) {
      const at = r.at % Math.max(1, virtualSize);
      const len = Math.min(r.len, virtualSize - at);
      if (len <= 0) continue;
      this.bytes.set(pseudoRandom(len, r.seed), at);
      spans.push([at, at + len]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    this.runs = [];
    for (const s of spans) {
      const last = this.runs[this.runs.length - 1];
      if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
      else this.runs.push([s[0], s[1]]);
    }
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    out.set(this.bytes.subarray(offset, offset + length));
    return out;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    let pos = from;
    for (const [s, e] of this.runs) {
      if (e <= pos) continue;
      if (s >= to) break;
      if (s > pos) yield { offset: pos, length: s - pos, kind: 'zero', depth: 0 };
      const end = Math.min(e, to);
      yield { offset: Math.max(s, pos), length: end - Math.max(s, pos), kind: 'data', depth: 0 };
      pos = end;
    }
    if (pos < to) yield { offset: pos, length: to - pos, kind: 'zero', depth: 0 };
  }

  info(): FormatInfo {
    return { format: 'raw', virtualSize: this.virtualSize };
  }
  files(): string[] {
    return [];
  }
  async close(): Promise<void> {}
}

/** A file-like sink (holes allowed) or a pipe sink, and a way to get the bytes written. */
export function memorySink(pipe: boolean): { sink: ByteSink; bytes: () => Promise<Uint8Array> } {
  if (!pipe) {
    const sink = new BufferSink('out');
    return { sink, bytes: async () => sink.bytes() };
  }
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const sink = new StreamSink(stream, '<pipe>');
  return {
    sink,
    bytes: async () => {
      await sink.close();
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
}

/** One round trip of a property test: `regions` of a `size`-byte disk written by `driver`. */
export interface RoundTrip {
  size: number;
  regions: Region[];
  options: Record<string, unknown>;
  pipe: boolean;
  chunk: number;
  zeroGranularity: number;
}

/**
 * Writes the source through the copy engine into `driver` (to memory, as a file or a pipe),
 * reopens the image with `open`, and checks it reads back the source followed by zeros.
 */
export async function expectRoundTrip(driver: FormatDriver, p: RoundTrip, open: (image: Uint8Array) => Promise<ImageReader>): Promise<{ image: Uint8Array; reader: ImageReader }> {
  const src = new SparseSource(p.size, p.regions);
  const { sink, bytes } = memorySink(p.pipe);
  const w = await driver.create!(sink, { virtualSize: p.size, options: p.options, file: `out.${driver.extensions[0]}`, allocation: () => (p.zeroGranularity === 0 ? allData(src.extents()) : src.extents()) });
  await copyImage(src, w, { chunkSize: p.chunk, zeroGranularity: p.zeroGranularity });
  await w.finish();
  const image = await bytes();
  const reader = await open(image);
  expect(reader.virtualSize).toBeGreaterThanOrEqual(p.size);
  const back = await reader.read(0, reader.virtualSize);
  expect(Buffer.from(back.subarray(0, p.size)).equals(Buffer.from(src.bytes))).toBe(true);
  expect(back.subarray(p.size).every((b) => b === 0)).toBe(true);
  expect(reader.info().warnings).toBeUndefined();
  return { image, reader };
}

/** A random data region of a disk of up to a few MiB. */
export const region: fc.Arbitrary<Region> = fc.record({ at: fc.nat({ max: 4 * 1024 * 1024 }), len: fc.integer({ min: 1, max: 300_000 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });

/**
 * Opens a damaged image and uses it as commands do — info, the map of (at most) its first 8 MiB,
 * reads at both ends of that — accepting success or a GuestkitError and nothing else.
 */
export async function expectOnlyGuestkitErrors(open: () => Promise<ImageReader>): Promise<void> {
  try {
    const r = await open();
    r.info();
    const end = Math.min(r.virtualSize, 8 * 1024 * 1024);
    let n = 0;
    for await (const e of r.extents(0, end)) {
      expect(e.length).toBeGreaterThan(0);
      if (++n > 100_000) throw new Error('too many extents');
    }
    const len = Math.min(end, 65536);
    await r.read(0, len);
    await r.read(end - len, len);
    await r.close();
  } catch (e) {
    if (!(e instanceof GuestkitError)) throw e;
  }
}
