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
 * - Every read and write started ahead has a handler from the start (observed.ts), and on failure
 *   all of them settle before copyImage rejects, once, with the first error.
 *
 * The steps live in their own modules: the plan of runs and reads (copy-runs.ts), the pieces a
 * chunk is cut into (copy-pieces.ts), the reads ahead (read-ahead.ts), the writes behind
 * (write-window.ts).
 */
import { AbortedError, UsageError } from '../errors.js';
import type { Extent, ImageReader, ImageWriter } from '../formats/types.js';
import { diffAgainstBase } from './base-diff.js';
import { overlayPieces, zeroPieces } from './copy-pieces.js';
import { allData, alignedRuns, chunkLayout, chunkRanges } from './copy-runs.js';
import { ReadAhead } from './read-ahead.js';
import { WriteWindow } from './write-window.js';

export { alignedRuns } from './copy-runs.js';

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

const DEFAULT_CHUNK = 2 * 1024 * 1024;

/** The settings one copy runs with, checked against the writer. */
export interface CopySettings {
  size: number;
  /** The writer's unit: data runs are widened to it, overlay pieces compared by it. */
  block: number;
  chunk: number;
  /** Smallest zero run written as zeros rather than data (0: everything is written as data). */
  zeroUnit: number;
  readAhead: number;
}

export function copySettings(reader: ImageReader, writer: ImageWriter, opts: CopyOptions): CopySettings {
  const block = writer.blockSize ?? 512;
  if (block % 512 !== 0) throw new UsageError(`writer block size ${block} is not a multiple of 512`);
  if (opts.base && !writer.leave) throw new UsageError('this output cannot leave ranges to a backing image (-B needs a format with backing files)');
  const zg = opts.zeroGranularity ?? 4096;
  return {
    size: reader.virtualSize,
    block,
    chunk: chunkLayout(opts.chunkSize ?? DEFAULT_CHUNK, block),
    // Zero runs are cut at the writer's unit when it is coarser than -S: a cluster is all zero or it is data.
    zeroUnit: zg > 0 ? Math.max(zg, block) : 0,
    readAhead: Math.max(1, opts.readAhead ?? 4),
  };
}

/**
 * The source's extents as the copy sees them: against the base for an overlay output, and all
 * data with -S 0, where every byte of the output is written (holes and zeros included).
 */
export function copyExtents(reader: ImageReader, opts: CopyOptions): AsyncIterable<Extent> {
  const size = reader.virtualSize;
  const base = opts.base;
  if (base) {
    const baseSize = base.reader.virtualSize;
    return diffAgainstBase(reader.extents(0, size), base.reader.extents(0, baseSize), { baseSize, sharedDepth: base.sharedDepth });
  }
  return opts.zeroGranularity === 0 ? allData(reader.extents(0, size)) : reader.extents(0, size);
}

export async function copyImage(reader: ImageReader, writer: ImageWriter, opts: CopyOptions = {}): Promise<CopyStats> {
  const s = copySettings(reader, writer, opts);
  const stats: CopyStats = { virtualSize: s.size, bytesRead: 0, bytesWritten: 0, zeroBytes: 0, unchangedBytes: 0 };
  const progress: CopyProgress = { done: 0, total: s.size, bytesRead: 0 };
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new AbortedError('conversion cancelled');
  };
  const reads = new ReadAhead(reader, opts.base?.reader, s.chunk, s.readAhead);
  const writes = new WriteWindow(writer, stats, (end) => {
    progress.done = end;
    opts.onProgress?.(progress);
    checkAbort();
  });

  /** The oldest read, once in, cut into pieces and queued for the writer; its buffers return to the pool when written. */
  const handOverOldest = async () => {
    const c = await reads.next();
    checkAbort();
    stats.bytesRead += c.bytes.length;
    progress.bytesRead = stats.bytesRead;
    const pieces = c.baseBytes ? overlayPieces(c.bytes, c.baseBytes, s.block) : zeroPieces(c.bytes, s.zeroUnit);
    await writes.queue(() => writes.putPieces(c.offset, c.bytes, pieces).then(c.release), c.offset + c.bytes.length);
  };

  try {
    for await (const run of alignedRuns(copyExtents(reader, opts), s.block, s.size)) {
      checkAbort();
      if (!run.data) {
        // The reads in flight are handed over first (calls stay in offset order); the writes
        // already queued need not finish before this run's call is made.
        while (reads.pending) await handOverOldest();
        await writes.queue(() => writes.put(opts.base ? 'leave' : 'zero', run.offset, run.length), run.offset + run.length);
        continue;
      }
      for (const [from, to] of chunkRanges(run, s.chunk)) {
        reads.start(from, to - from);
        if (reads.full) await handOverOldest();
      }
    }
    while (reads.pending) await handOverOldest();
    await writes.drain();
    checkAbort();
  } catch (e) {
    // Let reads and writes already started settle so no buffer is used after we return.
    await Promise.all([reads.settle(), writes.settle()]);
    throw e;
  }
  progress.done = s.size;
  opts.onProgress?.(progress);
  return stats;
}
