/**
 * How much space a conversion needs, like `qemu-img measure`, computed by the format's own
 * writer rather than by a second model of each layout: the writer is driven exactly as convert
 * drives it, but into a sink that only counts the bytes it would occupy.
 *
 * Both figures are the length of the file(s) the writer produces, not the bytes it fills: a
 * target sized from `required` (a block device, a quota, `ulimit -f`) must hold the file up to its
 * last byte, holes included (a dynamic VHD leaves the zero sectors of a block as holes, qcow2 the
 * unused tail of its refcount area).
 *
 * - required: a dry run of the uncompressed conversion — the source's allocated ranges are read
 *   and zero-scanned as convert does (raw sources have no allocation map in Node, so this is the
 *   only way to know their holes), so the figure is exactly what convert writes; with --size, the
 *   writer is driven exactly as `create` drives it;
 * - fully-allocated: the writer fed incompressible bytes over the whole virtual disk (nothing read,
 *   and the pattern copied once per engine buffer): the worst case for formats that compress
 *   (streamOptimized VMDK stores such grains as they are).
 */
import { UsageError } from '../errors.js';
import { writerByName } from '../formats/capabilities.js';
import { openImage, type OpenOptions } from '../formats/open.js';
import { parseDriverOptions, optionRecord } from '../formats/shared/options.js';
import { resolve } from 'node:path';
import type { Extent, FormatDriver, ImageReader, ImageWriter } from '../formats/types.js';
import { copyImage } from '../stream/copy.js';
import type { ByteSink } from '../stream/sink.js';

/** Counts the union of byte ranges written: what the file would occupy on disk (holes excluded). */
export class CountingSink implements ByteSink {
  readonly seekable = true;
  readonly name: string;
  /** Sorted, disjoint [start, end) ranges. */
  private ranges: Array<[number, number]> = [];
  private length = 0;
  constructor(name = '<measure>') {
    this.name = name;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    this.add(offset, offset + data.length);
    this.length = Math.max(this.length, offset + data.length);
  }

  private add(start: number, end: number): void {
    const r = this.ranges;
    // Writers mostly append: merge with the last range cheaply.
    const last = r[r.length - 1];
    if (!last || start > last[1]) {
      r.push([start, end]);
      return;
    }
    if (start >= last[0]) {
      last[1] = Math.max(last[1], end);
      return;
    }
    // General case: binary search the first range that ends at or after start, merge forward.
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[mid][1] < start) lo = mid + 1;
      else hi = mid;
    }
    let j = lo;
    let s = start;
    let e = end;
    while (j < r.length && r[j][0] <= e) {
      s = Math.min(s, r[j][0]);
      e = Math.max(e, r[j][1]);
      j++;
    }
    r.splice(lo, j - lo, [s, e]);
  }

  async setLength(length: number): Promise<void> {
    this.length = length;
    // Ranges past a truncation are gone.
    this.ranges = this.ranges.filter(([s]) => s < length).map(([s, e]) => [s, Math.min(e, length)] as [number, number]);
  }

  async sync(): Promise<void> {}
  async close(): Promise<void> {}

  /** The file's length: the end of the last write, or what setLength made it. */
  size(): number {
    return this.length;
  }

  /** Bytes that hold data (what `du` would report, before filesystem rounding). */
  allocated(): number {
    return this.ranges.reduce((n, [s, e]) => n + (e - s), 0);
  }
}

/**
 * Pseudo-random bytes (xorshift32): a constant pattern deflates to almost nothing, so a
 * compressing writer measured with it would report far less than a full disk of real data needs.
 */
const PATTERN = (() => {
  const words = new Uint32Array(1024 * 1024);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer);
})();

/**
 * A reader with the allocation map of another (or all data) whose bytes are a constant pattern.
 * The copy engine reads into the same few pool buffers over and over, and writers never change
 * the bytes they are given, so each buffer is filled once: measuring a fully allocated 1 TiB disk
 * would otherwise copy a terabyte of pattern (64 GiB took 9 s).
 */
function patternReader(virtualSize: number, extents: () => AsyncIterable<Extent>): ImageReader {
  /** Per buffer, how many bytes from its start already hold the pattern. */
  const filled = new WeakMap<ArrayBufferLike, number>();
  return {
    format: 'pattern',
    virtualSize,
    async read(_offset, length, into) {
      const out = into ? into.subarray(0, length) : new Uint8Array(length);
      const prefix = filled.get(out.buffer) ?? 0;
      if (out.byteOffset + length <= prefix) return out;
      for (let i = 0; i < length; i += PATTERN.length) out.set(PATTERN.subarray(0, Math.min(PATTERN.length, length - i)), i);
      if (out.byteOffset <= prefix) filled.set(out.buffer, Math.max(prefix, out.byteOffset + length));
      return out;
    },
    extents: (from = 0, to = virtualSize) => {
      const src = extents();
      return (async function* () {
        for await (const e of src) {
          const s = Math.max(from, e.offset);
          const t = Math.min(to, e.offset + e.length);
          if (t > s) yield { ...e, offset: s, length: t - s };
        }
      })();
    },
    info: () => ({ format: 'pattern', virtualSize }),
    files: () => [],
    close: async () => {},
  };
}

/**
 * Where the writer believes it writes: formats that write several files (split or flat VMDK
 * extents) name them after it, and a backing file is found relative to it, as for an output in
 * the current folder. Nothing is created there.
 */
const MEASURE_PATH = resolve('guestkit-measure');

/** A dry run of the writer: the summed lengths of every file it would write. */
async function sizeFor(driver: FormatDriver, options: Record<string, unknown>, virtualSize: number, feed: ((w: ImageWriter) => Promise<unknown>) | undefined, allocation: () => AsyncIterable<Extent>): Promise<number> {
  const sinks = [new CountingSink()];
  const writer = await driver.create!(sinks[0], {
    virtualSize,
    options,
    path: `${MEASURE_PATH}.${driver.extensions[0] ?? driver.name}`,
    file: sinks[0].name,
    allocation,
    openSideFile: async (p) => {
      const side = new CountingSink(p);
      sinks.push(side);
      return side;
    },
  });
  try {
    if (feed) await feed(writer);
    await writer.finish();
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
  return sinks.reduce((n, s) => n + s.size(), 0);
}

export interface MeasureOptions {
  /** Output format. */
  format: string;
  options?: Record<string, unknown> | string;
  /** Measure a conversion of this image… */
  source?: string;
  sourceFormat?: string;
  /** …or a new image of this size. */
  size?: number;
  allowOutside?: boolean;
}

export interface MeasureResult {
  required: number;
  'fully-allocated': number;
}

export async function measure(opts: MeasureOptions): Promise<MeasureResult> {
  const driver = writerByName(opts.format);
  const raw = optionRecord(opts.options);
  const options = parseDriverOptions(driver.optionsSchema, driver.name, raw) as Record<string, unknown>;
  let source: ImageReader | undefined;
  if (opts.source) source = await openImage(opts.source, { format: opts.sourceFormat, allowOutside: opts.allowOutside } satisfies OpenOptions);
  try {
    const size = source?.virtualSize ?? opts.size;
    if (size === undefined) throw new UsageError('measure needs a source image or --size');
    const allData = async function* (): AsyncIterable<Extent> {
      if (size > 0) yield { offset: 0, length: size, kind: 'data', depth: 0 };
    };
    const nothing = async function* (): AsyncIterable<Extent> {};
    // As convert drives the writer (default -S), or as create does: no blocks at all.
    const required = source
      ? await sizeFor(driver, options, size, (w) => copyImage(source!, w, {}), () => source!.extents())
      : await sizeFor(driver, options, size, undefined, nothing);
    const pattern = patternReader(size, allData);
    const full = await sizeFor(driver, options, size, (w) => copyImage(pattern, w, { zeroGranularity: 0, chunkSize: PATTERN.length }), allData);
    return { required, 'fully-allocated': full };
  } finally {
    await source?.close();
  }
}
