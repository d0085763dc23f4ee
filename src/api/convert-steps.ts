/**
 * The steps both kinds of conversion share (a new output in convert.ts, an existing one in
 * convert-into.ts): the options and result, choosing the output driver, opening the source,
 * refusing an output that is part of the source, the atomic output sink, the writer and the copy.
 */
import { UsageError } from '../errors.js';
import { byExtension, byName, outputFormatByName, fallbackDriver } from '../formats/registry.js';
import { openImage } from '../formats/open.js';
import { openPipe } from '../formats/open.js';
import { sameFile } from '../stream/file-identity.js';
import type { FormatDriver, ImageReader, ImageWriter } from '../formats/types.js';
import { AtomicOutput } from '../stream/atomic.js';
import { copyImage, type BaseImage, type CopyProgress, type CopyStats } from '../stream/copy.js';
import { retryingSink, type RetryPolicy } from '../stream/retry.js';
import { fullyAllocated, type ByteSink } from '../stream/sink.js';
import { allData } from '../stream/copy-runs.js';
import { StreamSource, type ByteSource } from '../stream/source.js';

export interface ConvertOptions {
  /** Source path, or '-' for standard input. */
  source: string;
  /** Output path, or '-' for standard output. */
  output: string;
  /** Source format; detected from content when omitted. */
  sourceFormat?: string;
  /** The disk of an OVA source (index or OVF disk id/file name). */
  disk?: string;
  /** Output format; taken from the output's extension when omitted, else raw. */
  format?: string;
  compress?: boolean;
  /** Format options: an object or qemu-img's `k=v,k=v` string. */
  options?: Record<string, unknown> | string;
  /** Replace an existing output. */
  force?: boolean;
  /** Flush the output to stable storage before renaming it into place (default true; qemu-img -t unsafe is false). */
  durable?: boolean;
  /** Allow backing/extent paths outside the source image's folder. */
  allowOutside?: boolean;
  /** Minimum zero run left sparse (qemu-img -S); 0 writes everything. */
  sparseSize?: number;
  /** Parallel jobs (qemu-img -m): compression jobs, and threads inflating compressed qcow2 clusters (the main thread counts as one). */
  parallelism?: number;
  /**
   * Make the output an overlay of this image (qemu-img -B; also `-o backing_file=`): only what
   * differs from it is stored. Named relative to the output's folder, as it is stored.
   */
  backingFile?: string;
  /** Format of `backingFile` (detected when omitted). */
  backingFormat?: string;
  /** Write into the existing output image (qemu-img -n) instead of creating it. */
  existing?: boolean;
  /** With `existing`: the output already reads as zeros, so zero runs are not written (qemu-img --target-is-zero). */
  targetIsZero?: boolean;
  onProgress?: (p: CopyProgress) => void;
  signal?: AbortSignal;
  /** Wraps the byte source/sink (fault injection in tests, I/O accounting); inside the retry layer. */
  io?: { source?: (s: ByteSource) => ByteSource; sink?: (s: ByteSink) => ByteSink };
  /** Retry policy for transient I/O errors on the output. */
  retry?: RetryPolicy;
}

export interface ConvertResult {
  success: true;
  source: string;
  output: string;
  sourceFormat: string;
  format: string;
  virtualSize: number;
  /** Bytes the output occupies (its length; for a pipe, bytes written). */
  outputSize: number;
  bytesRead: number;
  /** Bytes left to the backing image (-B). */
  unchangedBytes: number;
  seconds: number;
}

/** The output format: named, else by the output's extension, else the catch-all (raw). */
export function outputDriverFor(output: string, format: string | undefined): FormatDriver {
  if (format) return outputFormatByName(format);
  if (output === '-') return fallbackDriver();
  return byExtension(output) ?? fallbackDriver();
}

// Device and inode, not paths: a hard link to a backing file is that file.
export { sameFile };

/** Standard input, read from the pipe or spooled first as its format needs (formats/open.ts, openPipe). */
async function openStdin(opts: ConvertOptions): Promise<ImageReader> {
  if (opts.existing) throw new UsageError('-n converts from an image file; standard input is read only when creating the output');
  return openPipe(new StreamSource(process.stdin), { format: opts.sourceFormat, disk: opts.disk, allowOutside: opts.allowOutside, parallelism: opts.parallelism });
}

/** Opens the source of a conversion: a file (with its chain) or standard input. */
export function openConvertSource(opts: ConvertOptions): Promise<ImageReader> {
  return opts.source === '-'
    ? openStdin(opts)
    : openImage(opts.source, { format: opts.sourceFormat, disk: opts.disk, allowOutside: opts.allowOutside, wrapSource: opts.io?.source, retry: opts.retry, parallelism: opts.parallelism });
}

/** Refuses an output that is the source or one of the files it is made of. */
export function refuseSourceAsOutput(reader: ImageReader, output: string): void {
  for (const f of reader.files()) {
    if (sameFile(f, output)) {
      throw new UsageError(`output ${output} is the source image or part of its backing chain; choose another name`, { file: output });
    }
  }
}

/** Runs the copy engine into `writer` and finishes it; aborts the writer on failure. */
export async function copyInto(reader: ImageReader, writer: ImageWriter, opts: ConvertOptions, base?: BaseImage): Promise<CopyStats> {
  try {
    const stats = await copyImage(reader, writer, { zeroGranularity: opts.sparseSize, onProgress: opts.onProgress, signal: opts.signal, base });
    await writer.finish();
    return stats;
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
}

/** An output sink behind the test hooks and the retry layer. */
export function wrapSink(sink: ByteSink, opts: ConvertOptions): ByteSink {
  return retryingSink(opts.io?.sink ? opts.io.sink(sink) : sink, opts.retry);
}

/** An atomic output file (temporary name until commit) behind the retry layer and the test hooks. */
export async function atomicSink(path: string, opts: ConvertOptions, force: boolean | undefined): Promise<{ output: AtomicOutput; sink: ByteSink }> {
  const { output, sink } = await AtomicOutput.create(path, { force, durable: opts.durable });
  return { output, sink: wrapSink(sink, opts) };
}

/** The driver's writer for `content`, planned from its allocation map; side files join `output`. */
export function createWriter(driver: FormatDriver, sink: ByteSink, output: AtomicOutput | undefined, content: ImageReader, options: unknown, opts: ConvertOptions, path: string | undefined): Promise<ImageWriter> {
  // -S 0: every byte is written, holes and zeros included (qemu-img: fully allocated).
  const mark = (s: ByteSink) => (opts.sparseSize === 0 ? fullyAllocated(s) : s);
  return driver.create!(mark(sink), {
    virtualSize: content.virtualSize,
    options: options as Record<string, unknown>,
    compress: opts.compress,
    parallelism: opts.parallelism,
    path,
    file: opts.output,
    // With -S 0 the engine hands every byte over as data: the writer must plan for that.
    allocation: () => (opts.sparseSize === 0 ? allData(content.extents()) : content.extents()),
    openSideFile: output ? async (p) => mark(await output.add(p)) : undefined,
  });
}

/** The result both kinds of conversion report. */
export function convertResult(opts: ConvertOptions, reader: ImageReader, driver: FormatDriver, stats: Pick<CopyStats, 'bytesRead' | 'unchangedBytes'>, outputSize: number, started: number): ConvertResult {
  return {
    success: true,
    source: opts.source,
    output: opts.output,
    sourceFormat: reader.format,
    format: driver.name,
    virtualSize: reader.virtualSize,
    outputSize,
    bytesRead: stats.bytesRead,
    unchangedBytes: stats.unchangedBytes,
    seconds: (performance.now() - started) / 1000,
  };
}

