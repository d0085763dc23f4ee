/**
 * The library's convert(): open the source (file or pipe), create the writer for the target
 * format on an atomic output, run the copy engine, commit. The CLI's convert is a thin layer
 * over this.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { UnsupportedFeatureError, UsageError } from '../errors.js';
import { byExtension, byName } from '../formats/registry.js';
import { openImage, openSource } from '../formats/open.js';
import { parseDriverOptions, parseOptionString } from '../formats/shared/options.js';
import type { FormatDriver, ImageReader } from '../formats/types.js';
import { AtomicOutput } from '../stream/atomic.js';
import { copyImage, type CopyProgress } from '../stream/copy.js';
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
  /** Parallel compression jobs (qemu-img -m). */
  parallelism?: number;
  /** Backing chains are always flattened into the output (kept for the seed toolkit's signature). */
  flatten?: boolean;
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
  seconds: number;
}

export function outputDriverFor(output: string, format: string | undefined): FormatDriver {
  if (format) return byName(format);
  if (output === '-') return byName('raw');
  return byExtension(output) ?? byName('raw');
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
  const pipe = new StreamSource(process.stdin);
  const format = opts.sourceFormat ?? (await detectSource(pipe)).format;
  const source = format === 'raw' ? await spoolToTempFile(pipe) : pipe;
  return openSource(source, { format, allowOutside: opts.allowOutside });
}

export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  const started = performance.now();
  const driver = outputDriverFor(opts.output, opts.format);
  if (!driver.create || !driver.capabilities.write) {
    throw new UnsupportedFeatureError(`writing ${driver.name} images is not supported`);
  }
  if (opts.compress && !driver.capabilities.compression) {
    throw new UsageError(`format ${driver.name} does not support compression (-c)`);
  }
  const rawOptions = typeof opts.options === 'string' ? parseOptionString(opts.options) : (opts.options ?? {});
  const options = parseDriverOptions(driver.optionsSchema, driver.name, rawOptions);

  const reader: ImageReader =
    opts.source === '-'
      ? await openStdin(opts)
      : await openImage(opts.source, { format: opts.sourceFormat, allowOutside: opts.allowOutside, wrapSource: opts.io?.source, retry: opts.retry });
  let output: AtomicOutput | undefined;
  let sink: ByteSink | undefined;
  try {
    if (opts.output === '-') {
      if (!driver.capabilities.streamWrite) {
        throw new UsageError(`${driver.name} cannot be written to a pipe in one pass; give an output file instead of '-'`);
      }
      sink = new StreamSink(process.stdout);
    } else {
      for (const f of reader.files()) {
        if (sameFile(f, opts.output)) {
          throw new UsageError(`output ${opts.output} is the source image or part of its backing chain; choose another name`, {
            file: opts.output,
          });
        }
      }
      ({ output, sink } = await AtomicOutput.create(opts.output, { force: opts.force, durable: opts.durable }));
      sink = retryingSink(opts.io?.sink ? opts.io.sink(sink) : sink, opts.retry);
    }
    const out = output;
    const writer = await driver.create(sink, {
      virtualSize: reader.virtualSize,
      options: options as Record<string, unknown>,
      compress: opts.compress,
      parallelism: opts.parallelism,
      path: opts.output === '-' ? undefined : opts.output,
      file: opts.output,
      allocation: () => reader.extents(),
      openSideFile: out ? (p) => out.add(p) : undefined,
    });
    let stats;
    try {
      stats = await copyImage(reader, writer, {
        zeroGranularity: opts.sparseSize,
        onProgress: opts.onProgress,
        signal: opts.signal,
      });
      await writer.finish();
    } catch (e) {
      await writer.abort().catch(() => {});
      throw e;
    }
    await output?.commit();
    if (!output) await sink.close();
    const outputSize = opts.output === '-' ? stats.bytesWritten : (await stat(opts.output)).size;
    return {
      success: true,
      source: opts.source,
      output: opts.output,
      sourceFormat: reader.format,
      format: driver.name,
      virtualSize: reader.virtualSize,
      outputSize,
      bytesRead: stats.bytesRead,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (e) {
    await output?.discard();
    throw e;
  } finally {
    await reader.close();
  }
}
