/**
 * The library's convert(): open the source (file or pipe), create the writer for the target
 * format on an atomic output, run the copy engine, commit. The CLI's convert is a thin layer
 * over this. Converting into an existing image (-n) is in convert-into.ts; the steps both share
 * are in convert-steps.ts.
 */
import { dirname, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { requireWriter } from '../formats/capabilities.js';
import { byName, qemuName } from '../formats/registry.js';
import { openImage } from '../formats/open.js';
import { refuseUrl } from '../formats/shared/url.js';
import { parseDriverOptions, optionRecord } from '../formats/shared/options.js';
import type { ImageReader } from '../formats/types.js';
import type { AtomicOutput } from '../stream/atomic.js';
import type { BaseImage } from '../stream/copy.js';
import { StreamSink, type ByteSink } from '../stream/sink.js';
import { convertInto } from './convert-into.js';
import { atomicSink, convertResult, copyInto, createWriter, openConvertSource, outputDriverFor, refuseSourceAsOutput, sameFile, type ConvertOptions, type ConvertResult } from './convert-steps.js';

export { outputDriverFor, type ConvertOptions, type ConvertResult } from './convert-steps.js';

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
    return convertInto(opts);
  }
  const started = performance.now();
  const driver = outputDriverFor(opts.output, opts.format);
  requireWriter(driver, { compress: opts.compress, backing: opts.backingFile !== undefined });
  const rawOptions = optionRecord(opts.options);
  if (opts.backingFile !== undefined) {
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
