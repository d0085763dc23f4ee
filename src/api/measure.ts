/**
 * How much space a conversion needs, like `qemu-img measure`, computed by the format's own
 * writer rather than by a second model of each layout: the writer is driven exactly as convert
 * drives it, but into a sink that only counts the bytes it would occupy.
 *
 * - required: a dry run of the uncompressed conversion — the source's allocated ranges are read
 *   and zero-scanned as convert does (raw sources have no allocation map in Node, so this is the
 *   only way to know their holes), so the figure is exactly what convert writes;
 * - fully-allocated: the writer fed a constant pattern over the whole virtual disk (nothing read,
 *   and the pattern copied once per engine buffer).
 */
import { UnsupportedFeatureError } from '../errors.js';
import { byName } from '../formats/registry.js';
import { requireWriter } from '../formats/capabilities.js';
import { openImage, type OpenOptions } from '../formats/open.js';
import { parseDriverOptions, optionRecord } from '../formats/shared/options.js';
import type { Extent, FormatDriver, ImageReader } from '../formats/types.js';
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

  /** Bytes that hold data (what `du` would report, before filesystem rounding). */
  allocated(): number {
    return this.ranges.reduce((n, [s, e]) => n + (e - s), 0);
  }
}

const PATTERN = new Uint8Array(4 * 1024 * 1024).fill(0xa5);

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

async function sizeFor(driver: FormatDriver, options: Record<string, unknown>, reader: ImageReader, zeroScan: boolean): Promise<number> {
  const sink = new CountingSink();
  const writer = await driver.create!(sink, {
    virtualSize: reader.virtualSize,
    options,
    file: sink.name,
    allocation: () => reader.extents(),
  });
  await copyImage(reader, writer, zeroScan ? {} : { zeroGranularity: 0, chunkSize: PATTERN.length });
  await writer.finish();
  return sink.allocated();
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
  const driver = byName(opts.format);
  requireWriter(driver);
  const raw = optionRecord(opts.options);
  const options = parseDriverOptions(driver.optionsSchema, driver.name, raw) as Record<string, unknown>;
  let source: ImageReader | undefined;
  if (opts.source) source = await openImage(opts.source, { format: opts.sourceFormat, allowOutside: opts.allowOutside } satisfies OpenOptions);
  try {
    const size = source?.virtualSize ?? opts.size;
    if (size === undefined) throw new UnsupportedFeatureError('measure needs a source image or --size');
    const allData = async function* (): AsyncIterable<Extent> {
      if (size > 0) yield { offset: 0, length: size, kind: 'data', depth: 0 };
    };
    const none = async function* (): AsyncIterable<Extent> {
      if (size > 0) yield { offset: 0, length: size, kind: 'unallocated', depth: 0 };
    };
    const required = source ? await sizeFor(driver, options, source, true) : await sizeFor(driver, options, patternReader(size, none), false);
    const full = await sizeFor(driver, options, patternReader(size, allData), false);
    return { required, 'fully-allocated': full };
  } finally {
    await source?.close();
  }
}
