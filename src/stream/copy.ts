/**
 * The copy engine: the one loop through which every conversion moves its bytes.
 *
 *   reader.extents() ──► aligned runs ──► chunked reads (several in flight, pooled buffers)
 *                                         ──► zero scan ──► writer.write / writer.writeZeroes
 *
 * - Unallocated and zero runs are never read: they become writeZeroes, which writers turn into
 *   holes or unallocated entries.
 * - Data runs are widened to the writer's block size (a cluster, a grain) so a writer never gets
 *   a partial unit, and read in large chunks aligned to absolute multiples of the chunk size so that
 *   adjacent clusters coalesce into one big read.
 * - Reads run ahead of the writer (`readAhead` in flight); awaiting the writer is the backpressure.
 *   Buffers come from a fixed pool, so memory is readAhead × chunk whatever the image size.
 * - This is a promise pipeline rather than an object-mode stream: the same backpressure, without
 *   an allocation and two ticks per block.
 */
import { AbortedError, UsageError } from '../errors.js';
import type { Extent, ImageReader, ImageWriter } from '../formats/types.js';
import { readZeroExtended } from '../formats/shared/extended-reader.js';
import { diffAgainstBase } from './base-diff.js';
import { rangeIsZero, scanZeroRuns, view } from './zero.js';

export interface CopyProgress {
  /** Virtual bytes covered so far (holes count too). */
  done: number;
  total: number;
  /** Bytes of data read from the source. */
  bytesRead: number;
}

export interface CopyOptions {
  /** Size of each read; rounded to a multiple of the writer's block size. Default 2 MiB. */
  chunkSize?: number;
  /** Minimum zero run turned into a hole (qemu-img -S); 0 disables zero detection. Default 4 KiB. */
  zeroGranularity?: number;
  /** Reads in flight ahead of the writer. Default 4. */
  readAhead?: number;
  onProgress?: (p: CopyProgress) => void;
  signal?: AbortSignal;
  /**
   * The output is an overlay of this image (convert -B): only what differs from it is written,
   * the rest left to it with writer.leave().
   */
  base?: BaseImage;
}

export interface BaseImage {
  reader: ImageReader;
  /** Source runs from this chain depth down are the base's own bytes (the source is its overlay): skipped unread. */
  sharedDepth?: number;
}

export interface CopyStats {
  virtualSize: number;
  bytesRead: number;
  bytesWritten: number;
  zeroBytes: number;
  /** Bytes left to the base image (convert -B). */
  unchangedBytes: number;
}

interface Run {
  offset: number;
  length: number;
  data: boolean;
}

const DEFAULT_CHUNK = 2 * 1024 * 1024;

/**
 * Merges extents into alternating data / no-data runs, widening data runs to `align` boundaries
 * (clamped to `size`). A long data run is handed over in pieces of about `release` bytes as it
 * grows, so a forward-only reader (a pipe) is asked to read soon after it maps, without holding a
 * whole dense stretch. Pure, so it is unit-tested on its own.
 */
export async function* alignedRuns(extents: AsyncIterable<Extent>, align: number, size: number, release = 8 * 1024 * 1024): AsyncGenerator<Run> {
  let cur: Run | undefined;
  for await (const e of extents) {
    // Later data can only widen back to an aligned boundary at or after cur's end, so an aligned
    // prefix of a data run is final.
    if (cur?.data && cur.length >= release + align) {
      const cut = Math.floor((cur.offset + cur.length - align) / align) * align;
      if (cut > cur.offset) {
        yield { offset: cur.offset, length: cut - cur.offset, data: true };
        cur = { offset: cut, length: cur.offset + cur.length - cut, data: true };
      }
    }
    if (e.length <= 0) continue;
    const data = e.kind === 'data';
    let start = e.offset;
    let end = e.offset + e.length;
    if (data) {
      start = Math.floor(start / align) * align;
      end = Math.min(size, Math.ceil(end / align) * align);
    }
    if (cur) {
      const curEnd = cur.offset + cur.length;
      if (data) {
        if (cur.data) {
          // Overlapping or adjacent data: extend.
          if (start <= curEnd) {
            cur.length = Math.max(curEnd, end) - cur.offset;
            continue;
          }
        } else if (start < curEnd) {
          // Widened data eats into the preceding no-data run.
          cur.length = start - cur.offset;
        }
      } else {
        if (start < curEnd) start = curEnd; // a widened data run already covers this part
        if (end <= start) continue;
        if (!cur.data && start === curEnd) {
          cur.length = end - cur.offset;
          continue;
        }
      }
      if (cur.length > 0) yield cur;
    }
    cur = { offset: start, length: end - start, data };
  }
  if (cur && cur.length > 0) yield cur;
}

function chunkLayout(chunk: number, block: number): number {
  const c = Math.max(block, Math.floor(chunk / block) * block);
  return c;
}

export async function copyImage(reader: ImageReader, writer: ImageWriter, opts: CopyOptions = {}): Promise<CopyStats> {
  const size = reader.virtualSize;
  const block = writer.blockSize ?? 512;
  if (block % 512 !== 0) throw new UsageError(`writer block size ${block} is not a multiple of 512`);
  const chunk = chunkLayout(opts.chunkSize ?? DEFAULT_CHUNK, block);
  const zg = opts.zeroGranularity ?? 4096;
  // Zero runs are cut at the writer's unit when it is coarser than -S: a cluster is all zero or it is data.
  const zeroUnit = zg > 0 ? Math.max(zg, block) : 0;
  const readAhead = Math.max(1, opts.readAhead ?? 4);
  const stats: CopyStats = { virtualSize: size, bytesRead: 0, bytesWritten: 0, zeroBytes: 0, unchangedBytes: 0 };
  const base = opts.base;
  if (base && !writer.leave) throw new UsageError('this output cannot leave ranges to a backing image (-B needs a format with backing files)');
  const progress: CopyProgress = { done: 0, total: size, bytesRead: 0 };
  const report = () => opts.onProgress?.(progress);
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new AbortedError('conversion cancelled');
  };

  const pool: Uint8Array[] = [];
  const takeBuffer = () => pool.pop() ?? new Uint8Array(chunk);

  // Reads are started in order and consumed in order; each resolves to its chunk's bytes (and,
  // for an overlay, the base's bytes of the same range).
  type Pending = { offset: number; length: number; buf: Uint8Array; done: Promise<Uint8Array>; base?: { buf: Uint8Array; done: Promise<Uint8Array> } };

  /** Hands one run to the writer: data, zeros, or (overlay output) left to the base. */
  type Kind = 'data' | 'zero' | 'leave';
  const put = async (kind: Kind, offset: number, length: number, data?: Uint8Array) => {
    if (kind === 'data') {
      await writer.write(offset, data!);
      stats.bytesWritten += length;
    } else if (kind === 'zero') {
      await writer.writeZeroes(offset, length);
      stats.zeroBytes += length;
    } else {
      await writer.leave!(offset, length);
      stats.unchangedBytes += length;
    }
  };

  // Writers that take several calls in flight (parallelWrites > 1) get the next chunk's calls
  // before the previous chunk's have settled, so their writes overlap with each other and with the
  // reads; a buffer returns to the pool only when its calls have settled. Others get one call at a
  // time.
  const writeWindow = Math.max(1, writer.parallelWrites ?? 1);

  /** Hands a chunk's runs ([kind, start, end) within `bytes`) to the writer, in order. */
  type Piece = [Kind, number, number];
  const issue = async (offset: number, bytes: Uint8Array, pieces: Piece[]) => {
    if (writeWindow === 1) {
      for (const [k, s, e] of pieces) await put(k, offset + s, e - s, bytes.subarray(s, e));
      return;
    }
    // Every call is made now, so calls stay in offset order across chunks; wait for all of them
    // (not just the first failure) before the buffer can go back to the pool.
    const settled = await Promise.allSettled(pieces.map(([k, s, e]) => put(k, offset + s, e - s, bytes.subarray(s, e))));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  /** Overlay output: per writer unit, the same as the base → leave; zeros → stored zeros; else data. */
  const emitOverlay = (offset: number, bytes: Uint8Array, baseBytes: Uint8Array) => {
    const src = view(bytes);
    const old = view(baseBytes);
    const pieces: Piece[] = [];
    for (let s = 0; s < src.length; s += block) {
      const e = Math.min(src.length, s + block);
      const kind: Kind = src.compare(old, s, e, s, e) === 0 ? 'leave' : rangeIsZero(src, s, e) ? 'zero' : 'data';
      const last = pieces[pieces.length - 1];
      if (last?.[0] === kind) last[2] = e;
      else pieces.push([kind, s, e]);
    }
    return issue(offset, bytes, pieces);
  };
  const inflight: Pending[] = [];

  const emit = (offset: number, bytes: Uint8Array) => {
    if (zeroUnit === 0) return put('data', offset, bytes.length, bytes);
    const pieces: Piece[] = [];
    // Zero units are aligned to absolute offsets, which chunk boundaries already are.
    scanZeroRuns(bytes, zeroUnit, (s, e, z) => pieces.push([z ? 'zero' : 'data', s, e]));
    return issue(offset, bytes, pieces);
  };
  const writing: Array<{ done: Promise<void>; end: number }> = [];
  const settleOldestWrite = async () => {
    const w = writing.shift()!;
    await w.done;
    progress.done = w.end;
    report();
    checkAbort();
  };
  /** Queues a chunk's (or a run's) calls behind the ones in flight, keeping at most writeWindow. */
  const queueWrite = async (done: Promise<void>, end: number) => {
    done.catch(() => {}); // observed when settled
    writing.push({ done, end });
    while (writing.length >= writeWindow) await settleOldestWrite();
  };

  const drainOne = async () => {
    const p = inflight.shift()!;
    const bytes = await p.done;
    checkAbort();
    stats.bytesRead += bytes.length;
    progress.bytesRead = stats.bytesRead;
    const baseBytes = p.base ? await p.base.done : undefined;
    const emitted = baseBytes ? emitOverlay(p.offset, bytes, baseBytes) : emit(p.offset, bytes);
    const done = emitted.then(() => {
      pool.push(p.buf);
      if (p.base) pool.push(p.base.buf);
    });
    await queueWrite(done, p.offset + p.length);
  };
  const drainAll = async () => {
    while (inflight.length) await drainOne();
    while (writing.length) await settleOldestWrite();
  };

  try {
    const extents = base
      ? diffAgainstBase(reader.extents(0, size), base.reader.extents(0, base.reader.virtualSize), { baseSize: base.reader.virtualSize, sharedDepth: base.sharedDepth })
      : reader.extents(0, size);
    for await (const run of alignedRuns(extents, block, size)) {
      checkAbort();
      if (!run.data) {
        // The reads in flight are handed over first (calls stay in offset order); the writes
        // already queued need not finish before this run's call is made.
        while (inflight.length) await drainOne();
        await queueWrite(put(base ? 'leave' : 'zero', run.offset, run.length), run.offset + run.length);
        continue;
      }
      let off = run.offset;
      const end = run.offset + run.length;
      while (off < end) {
        // Cut at absolute chunk boundaries so reads of neighbouring runs line up.
        const next = Math.min(end, (Math.floor(off / chunk) + 1) * chunk);
        const buf = takeBuffer();
        const slice = buf.subarray(0, next - off);
        const pending: Pending = { offset: off, length: next - off, buf, done: reader.read(off, next - off, slice) };
        if (base) {
          const baseBuf = takeBuffer();
          pending.base = { buf: baseBuf, done: readZeroExtended(base.reader, off, baseBuf.subarray(0, next - off)) };
          pending.base.done.catch(() => {}); // observed in drainOne, or settled on error below
        }
        inflight.push(pending);
        off = next;
        if (inflight.length >= readAhead) await drainOne();
      }
    }
    await drainAll();
    checkAbort();
  } catch (e) {
    // Let reads and writes already started settle so no buffer is used after we return.
    await Promise.allSettled([...inflight.flatMap((p) => (p.base ? [p.done, p.base.done] : [p.done])), ...writing.map((w) => w.done)]);
    throw e;
  }
  progress.done = size;
  report();
  return stats;
}
