/**
 * The library's convert(): open the source (file or pipe), create the writer for the target
 * format on an atomic output, run the copy engine, commit. The CLI's convert is a thin layer
 * over this. Converting into an existing image (-n) is in convert-into.ts.
 */
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { UnsupportedFeatureError, UsageError } from '../errors.js';
import { byExtension, byName, qemuName, writerByName } from '../formats/registry.js';
import { refuseUrl } from '../formats/shared/url.js';
import { openImage, openSource } from '../formats/open.js';
import { parseDriverOptions, optionRecord } from '../formats/shared/options.js';
import type { FormatDriver, ImageReader, ImageWriter } from '../formats/types.js';
import { AtomicOutput } from '../stream/atomic.js';
import { copyImage, type BaseImage, type CopyProgress, type CopyStats } from '../stream/copy.js';
import { retryingSink, type RetryPolicy } from '../stream/retry.js';
import { StreamSink, type ByteSink } from '../stream/sink.js';
import { StreamSource, type ByteSource } from '../stream/source.js';
import { spoolToTempFile } from '../stream/spool.js';
import { detectSource } from '../formats/detect.js';

export interface ConvertOptions {
  /** Source path, or '-' for standard input. */
  source: string;
  /** Output path, or '-' for standard output. */
  output: string;
  /** Source format; detected from content when omitted. */
  sourceFormat?: string;
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
   * Backing chains are always flattened into the output unless `backingFile` is given (kept for
   * the seed toolkit's signature).
   */
  flatten?: boolean;
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

export function outputDriverFor(output: string, format: string | undefined): FormatDriver {
  if (format) return writerByName(format);
  if (output === '-') return byName('raw');
  // Through writerByName, so a read-only format named by the extension (.vhdx) is refused with the list of writable ones.
  return writerByName((byExtension(output) ?? byName('raw')).name);
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

/**
 * Standard input: formats that can be read in one forward pass are read from the pipe; raw data
 * (detected or named) is spooled to a sparse temporary file first, since its size is only known
 * at its end.
 */
async function openStdin(opts: ConvertOptions): Promise<ImageReader> {
  if (opts.existing) throw new UsageError('-n converts from an image file; standard input is read only when creating the output');
  const pipe = new StreamSource(process.stdin);
  const format = opts.sourceFormat ?? (await detectSource(pipe)).format;
  const source = format === 'raw' ? await spoolToTempFile(pipe) : pipe;
  return openSource(source, { format, allowOutside: opts.allowOutside, parallelism: opts.parallelism });
}

/** Opens the source of a conversion: a file (with its chain) or standard input. */
export function openConvertSource(opts: ConvertOptions): Promise<ImageReader> {
  return opts.source === '-'
    ? openStdin(opts)
    : openImage(opts.source, { format: opts.sourceFormat, allowOutside: opts.allowOutside, wrapSource: opts.io?.source, retry: opts.retry, parallelism: opts.parallelism });
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
  return driver.create!(sink, {
    virtualSize: content.virtualSize,
    options: options as Record<string, unknown>,
    compress: opts.compress,
    parallelism: opts.parallelism,
    path,
    file: opts.output,
    allocation: () => content.extents(),
    openSideFile: output ? (p) => output.add(p) : undefined,
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

/**
 * The image an overlay output is made against (-B): opened from the output's folder, as it will
 * be once the output exists. The source's own backing, when it is that same file, marks the runs
 * that need not even be read.
 */
async function openBase(reader: ImageReader, options: Record<string, unknown>, opts: ConvertOptions): Promise<BaseImage> {
  const name = String(options.backing_file);
  if (opts.output === '-') throw new UsageError('-B needs an output file: the backing file is named relative to it');
  const path = resolve(dirname(opts.output), name);
  if (sameFile(path, opts.output)) throw new UsageError(`the backing file ${name} is the output itself`, { file: opts.output });
  const base = await openImage(path, { format: options.backing_fmt as string | undefined, allowOutside: opts.allowOutside });
  // qemu-img 7.2 requires a backing format; the one we detected is as good as a named one.
  options.backing_fmt = qemuName(base.format);
  const ownBacking = reader.info().backingFileFull;
  return { reader: base, sharedDepth: ownBacking && sameFile(ownBacking, path) ? 1 : undefined };
}

export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  if (opts.output !== '-') refuseUrl(opts.output, 'output');
  if (opts.targetIsZero && !opts.existing) throw new UsageError('--target-is-zero requires use of -n flag');
  if (opts.existing) {
    if (opts.backingFile) throw new UsageError('-B makes a new overlay; it cannot be combined with -n (converting into an existing image)');
    const { convertInto } = await import('./convert-into.js');
    return convertInto(opts);
  }
  const started = performance.now();
  const driver = outputDriverFor(opts.output, opts.format);
  if (!driver.create || !driver.capabilities.write) {
    throw new UnsupportedFeatureError(`writing ${driver.name} images is not supported`);
  }
  if (opts.compress && !driver.capabilities.compression) {
    throw new UsageError(`format ${driver.name} does not support compression (-c)`);
  }
  const rawOptions = optionRecord(opts.options);
  if (opts.backingFile !== undefined) {
    if (!driver.capabilities.backing) throw new UsageError(`format ${driver.name} does not support backing files (-B); use qcow2 or vmdk`);
    rawOptions.backing_file = opts.backingFile;
    if (opts.backingFormat) rawOptions.backing_fmt = qemuName(byName(opts.backingFormat).name);
  }

  const reader = await openConvertSource(opts);
  let base: BaseImage | undefined;
  let output: AtomicOutput | undefined;
  let sink: ByteSink | undefined;
  try {
    // As in qemu-img, -o backing_file= is the same request as -B.
    if (rawOptions.backing_file !== undefined) base = await openBase(reader, rawOptions, opts);
    const options = parseDriverOptions(driver.optionsSchema, driver.name, rawOptions);
    if (opts.output === '-') {
      if (!driver.capabilities.streamWrite) {
        throw new UsageError(`${driver.name} cannot be written to a pipe in one pass; give an output file instead of '-'`);
      }
      sink = new StreamSink(process.stdout);
    } else {
      refuseSourceAsOutput(reader, opts.output);
      if (base) refuseSourceAsOutput(base.reader, opts.output);
      ({ output, sink } = await atomicSink(opts.output, opts, opts.force));
    }
    const writer = await createWriter(driver, sink, output, reader, options, opts, opts.output === '-' ? undefined : opts.output);
    const stats = await copyInto(reader, writer, opts, base);
    await output?.commit();
    if (!output) await sink.close();
    const outputSize = opts.output === '-' ? stats.bytesWritten : (await stat(opts.output)).size;
    return convertResult(opts, reader, driver, stats, outputSize, started);
  } catch (e) {
    await output?.discard();
    throw e;
  } finally {
    await base?.reader.close();
    await reader.close();
  }
}
