/**
 * convert -n: converting into an image that already exists, as qemu-img does for targets
 * created beforehand (a block device, an LVM volume, an image made with chosen options).
 *
 * - A format whose driver writes in place (writeInPlace: raw, a file or a block device) keeps the
 *   target's length, source data lands at the same offsets, and zero runs are zeroed only where
 *   the target does not already read as zeros (skipped entirely with --target-is-zero). Like
 *   qemu-img, this is not atomic.
 * - Any other format is rewritten whole, atomically, as a new image with the target's own layout
 *   (cluster size, version, subformat…) and size: the source's content, then whatever the target
 *   held past the source's end. Nothing half-written ever replaces it.
 */
import { stat } from 'node:fs/promises';
import { UnsupportedFeatureError, UsageError } from '../errors.js';
import { requireWriter } from '../formats/capabilities.js';
import { detectSource } from '../formats/detect.js';
import { openImage } from '../formats/open.js';
import { byName, fallbackDriver } from '../formats/registry.js';
import { ExtendedReader } from '../formats/shared/extended-reader.js';
import { optionRecord, parseDriverOptions } from '../formats/shared/options.js';
import { realPathOr } from '../formats/shared/real-path.js';
import type { FormatDriver, ImageReader } from '../formats/types.js';
import { AtomicOutput } from '../stream/atomic.js';
import { FileSink } from '../stream/sink.js';
import { FileSource } from '../stream/source.js';
import type { CopyStats } from '../stream/copy.js';
import { atomicSink, convertResult, copyInto, createWriter, openConvertSource, refuseSourceAsOutput, wrapSink, type ConvertOptions, type ConvertResult } from './convert-steps.js';

/** The target's format: -O when given (it must agree with the content), else what the content says. */
async function targetDriver(target: FileSource, path: string, opts: ConvertOptions): Promise<FormatDriver> {
  const found = (await detectSource(target)).driver;
  if (!opts.format) return found;
  const driver = byName(opts.format);
  const detected = found.name;
  // The fallback (raw) is what unrecognised content detects as; anything else is a real image we would destroy.
  if (!found.fallback && found !== driver && !opts.force) {
    throw new UsageError(`output ${path} holds a ${detected} image, not ${driver.name}; pass -O ${detected} to convert into it, or --force to overwrite it as ${driver.name}`, {
      file: path,
    });
  }
  return driver;
}

function tooSmall(path: string, target: number, source: number): UsageError {
  return new UsageError(`output file is smaller than input file (${target} < ${source} bytes); grow it first (guestkit resize) or drop -n`, { file: path });
}

export async function convertInto(opts: ConvertOptions): Promise<ConvertResult> {
  const started = performance.now();
  if (opts.output === '-') throw new UsageError('-n writes into an existing image file; it cannot write to standard output');
  const st = await stat(opts.output).catch(() => undefined);
  if (!st) throw new UsageError(`output ${opts.output} does not exist; -n converts into an existing image: create it first (guestkit create) or drop -n`, { file: opts.output });
  // A symlinked target is replaced where it points, not turned into a file.
  const path = realPathOr(opts.output);
  // Opened once: detected here, then read back by an in-place writer.
  const target = await FileSource.open(path);
  try {
    const driver = await targetDriver(target, path, opts);
    requireWriter(driver, { compress: opts.compress, file: opts.output });
    if (!driver.writeInPlace && !st.isFile()) {
      throw new UsageError(`output ${opts.output} is not a regular file: -n rewrites a ${driver.name} image as a new file renamed over it, which a device cannot take; use -O ${fallbackDriver().name} to write a device in place`, {
        file: opts.output,
      });
    }
    const reader = await openConvertSource(opts);
    try {
      refuseSourceAsOutput(reader, path);
      const done = driver.writeInPlace ? await inPlace(reader, driver, target, path, opts) : await rewrite(reader, driver, path, opts);
      return convertResult(opts, reader, driver, done.stats, done.outputSize, started);
    } finally {
      await reader.close();
    }
  } finally {
    await target.close();
  }
}

/** What a conversion into an existing target did, and the target's size (a block device's too: stat() says 0). */
interface Done {
  stats: CopyStats;
  outputSize: number;
}

async function inPlace(reader: ImageReader, driver: FormatDriver, target: FileSource, path: string, opts: ConvertOptions): Promise<Done> {
  if (target.size! < reader.virtualSize) throw tooSmall(opts.output, target.size!, reader.virtualSize);
  const sink = wrapSink(await FileSink.open(path, 'r+', opts.output), opts);
  try {
    const writer = driver.writeInPlace!(sink, { size: target.size!, target, isZero: opts.targetIsZero ?? false });
    const stats = await copyInto(reader, writer, opts);
    if (opts.durable ?? true) await sink.sync();
    return { stats, outputSize: target.size! };
  } finally {
    await sink.close();
  }
}

async function rewrite(reader: ImageReader, driver: FormatDriver, path: string, opts: ConvertOptions): Promise<Done> {
  if (!driver.recreateOptions) throw new UnsupportedFeatureError(`converting into an existing ${driver.name} image (-n) is not supported`, { file: opts.output });
  const target = await openImage(path, { format: driver.name, openBacking: false, name: opts.output });
  let output: AtomicOutput | undefined;
  try {
    const info = target.info();
    if (info.backingFile) {
      throw new UnsupportedFeatureError(`output ${opts.output} has a backing file (${info.backingFile}); -n into an overlay is not supported: convert with -B instead`, {
        file: opts.output,
      });
    }
    // Rewriting keeps the target's layout, not state that lives beside the disk's content.
    if (info.snapshots?.length) {
      throw new UnsupportedFeatureError(`output ${opts.output} has ${info.snapshots.length} internal snapshot(s), which -n would drop: convert to a new file instead`, {
        file: opts.output,
        field: 'snapshots',
      });
    }
    if (target.virtualSize < reader.virtualSize) throw tooSmall(opts.output, target.virtualSize, reader.virtualSize);
    // The target's layout, with the user's -o on top.
    const options = parseDriverOptions(driver.optionsSchema, driver.name, { ...driver.recreateOptions(info), ...optionRecord(opts.options) });
    // Past the source's end the target keeps its own bytes, unless it is known to read as zeros.
    const keepTail = !opts.targetIsZero && target.virtualSize > reader.virtualSize;
    const content = new ExtendedReader(reader, target.virtualSize, keepTail ? target : undefined);
    let sink;
    ({ output, sink } = await atomicSink(path, opts, true));
    const writer = await createWriter(driver, sink, output, content, options, opts, path);
    const stats = await copyInto(content, writer, opts);
    await output.commit();
    return { stats, outputSize: (await stat(path)).size };
  } catch (e) {
    await output?.discard();
    throw e;
  } finally {
    await target.close();
  }
}
