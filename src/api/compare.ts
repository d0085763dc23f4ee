/**
 * Content comparison across formats, with qemu-img compare's semantics: images of different
 * sizes are equal when the longer one reads as zeros past the shorter one's end (unless strict);
 * the first differing byte is reported. Ranges both images leave unallocated are not read.
 */
import { openImage, type OpenOptions } from '../formats/open.js';
import type { Extent, ImageReader } from '../formats/types.js';
import { isZero } from '../stream/zero.js';

export interface CompareOptions {
  formatA?: string;
  formatB?: string;
  /** Sizes must match too (qemu-img -s). */
  strict?: boolean;
  allowOutside?: boolean;
  /** The disk of an OVA (either image): index or OVF disk id/file name. */
  disk?: string;
  chunkSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface CompareResult {
  identical: boolean;
  /** First differing byte offset, when not identical. */
  mismatchOffset?: number;
  sizeA: number;
  sizeB: number;
  /** qemu-img's line: "Images are identical." / "Content mismatch at offset N!" / "Image size mismatch!" */
  message: string;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  // Buffer.compare finds equality fast; only on a difference do we look for its offset.
  const ba = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const bb = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (ba.equals(bb)) return -1;
  let lo = 0;
  let hi = a.length;
  // Binary search on equal prefixes: log2(chunk) native compares instead of a byte loop.
  while (hi - lo > 64) {
    const mid = (lo + hi) >>> 1;
    if (ba.compare(bb, lo, mid, lo, mid) === 0) lo = mid;
    else hi = mid;
  }
  for (let i = lo; i < hi; i++) if (a[i] !== b[i]) return i;
  return hi;
}

function firstNonZero(a: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return i;
  return -1;
}

/** Yields [start, end) runs where at least one of the two maps may hold data. */
async function* dataRuns(a: AsyncIterable<Extent>, b: AsyncIterable<Extent>, end: number): AsyncGenerator<[number, number]> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let ea = (await ia.next()).value as Extent | undefined;
  let eb = (await ib.next()).value as Extent | undefined;
  let pos = 0;
  while (pos < end) {
    while (ea && ea.offset + ea.length <= pos) ea = (await ia.next()).value as Extent | undefined;
    while (eb && eb.offset + eb.length <= pos) eb = (await ib.next()).value as Extent | undefined;
    const aEnd = ea ? ea.offset + ea.length : end;
    const bEnd = eb ? eb.offset + eb.length : end;
    const next = Math.min(end, aEnd, bEnd);
    const data = (ea?.kind ?? 'data') === 'data' || (eb?.kind ?? 'data') === 'data';
    if (data) yield [pos, next];
    pos = next;
  }
}

export async function compareReaders(a: ImageReader, b: ImageReader, opts: CompareOptions = {}): Promise<CompareResult> {
  const sizeA = a.virtualSize;
  const sizeB = b.virtualSize;
  if (opts.strict && sizeA !== sizeB) {
    return { identical: false, sizeA, sizeB, message: 'Strict mode: Image size mismatch!' };
  }
  // Small images get small buffers: a pipeline compares thousands of them.
  const chunk = Math.max(512, Math.min(opts.chunkSize ?? 2 * 1024 * 1024, Math.max(sizeA, sizeB)));
  const common = Math.min(sizeA, sizeB);
  const bufA = new Uint8Array(chunk);
  const bufB = new Uint8Array(chunk);
  const total = Math.max(sizeA, sizeB);
  for await (const [start, end] of dataRuns(a.extents(0, common), b.extents(0, common), common)) {
    for (let off = start; off < end; off += chunk) {
      const n = Math.min(chunk, end - off);
      const [ra, rb] = await Promise.all([a.read(off, n, bufA), b.read(off, n, bufB)]);
      const d = firstDiff(ra, rb);
      if (d >= 0) return { identical: false, mismatchOffset: off + d, sizeA, sizeB, message: `Content mismatch at offset ${off + d}!` };
      opts.onProgress?.(off + n, total);
    }
  }
  // The longer image must read as zeros past the common part.
  const longer = sizeA > sizeB ? a : b;
  for await (const e of longer.extents(common, total)) {
    if (e.kind !== 'data') continue;
    for (let off = e.offset; off < e.offset + e.length; off += chunk) {
      const n = Math.min(chunk, e.offset + e.length - off);
      const r = await longer.read(off, n, bufA);
      if (!isZero(r)) {
        const at = off + firstNonZero(r);
        return { identical: false, mismatchOffset: at, sizeA, sizeB, message: `Content mismatch at offset ${at}!` };
      }
    }
  }
  opts.onProgress?.(total, total);
  return { identical: true, sizeA, sizeB, message: sizeA !== sizeB ? 'Warning: Image size mismatch!\nImages are identical.' : 'Images are identical.' };
}

export async function compareImages(pathA: string, pathB: string, opts: CompareOptions = {}): Promise<CompareResult> {
  const base: OpenOptions = { allowOutside: opts.allowOutside, disk: opts.disk };
  const a = await openImage(pathA, { ...base, format: opts.formatA });
  try {
    const b = await openImage(pathB, { ...base, format: opts.formatB });
    try {
      return await compareReaders(a, b, opts);
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}
