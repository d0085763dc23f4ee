/**
 * Opening an image by path: detect (or take the given format), open through the driver, and let
 * the driver open the files it names (backing files, extents) through the same policy.
 */
import { LimitExceededError, UnsupportedFeatureError, UsageError, CorruptImageError } from '../errors.js';
import { FileSource, type ByteSource } from '../stream/source.js';
import { fileKey } from '../stream/file-identity.js';
import { openedInside } from './shared/paths.js';
import { retryingSource, type RetryPolicy } from '../stream/retry.js';
import { byName } from './registry.js';
import { detectBytes, detectSource, probeWith, readProbeInput } from './detect.js';
import { refuseUrl } from './shared/url.js';
import { openOvaDisk } from '../ova/open-disk.js';
import { openOvaPipe } from '../ova/pipe.js';
import { looksLikeOva } from '../ova/ova.js';
import type { DiskOpeners } from '../ova/openers.js';
import { spoolToTempFile } from '../stream/spool.js';
import type { FormatDriver, ImageReader, OpenContext, ProbeInput } from './types.js';

/** Deeper chains than this are refused: real chains are a handful of snapshots deep, loops are endless. */
export const MAX_CHAIN_DEPTH = 64;

export interface OpenOptions {
  /** Skip detection and open as this format. */
  format?: string;
  /** Allow backing/extent/parent paths outside the image's folder. */
  allowOutside?: boolean;
  /** Open backing files (default true). */
  openBacking?: boolean;
  /** Name shown in messages (defaults to the path). */
  name?: string;
  /** Wraps the top image's byte source (fault injection, accounting); the retry layer goes around it. */
  wrapSource?: (s: ByteSource) => ByteSource;
  /** Retry policy for transient read errors. */
  retry?: RetryPolicy;
  /** Threads that may inflate compressed data, the main thread included (qemu-img -m). */
  parallelism?: number;
  /** Which disk of an OVA to open: a 0-based index or the OVF disk id / file name (--disk). */
  disk?: string;
}

/** A chain loops when a file comes back under any name: a hard link too (device and inode). */
const canonical = fileKey;

async function openWithDriver(source: ByteSource, format: string | undefined, ctx: OpenContext): Promise<ImageReader> {
  let driver: FormatDriver;
  if (format) driver = byName(format);
  else driver = (await detectSource(source)).driver;
  if (!driver.open) {
    throw new UnsupportedFeatureError(`${driver.name} images cannot be read`, { file: ctx.file });
  }
  try {
    return await driver.open(source, ctx);
  } catch (e) {
    if (format && e instanceof CorruptImageError) throw (await notThisFormat(source, driver, ctx.file, e)) ?? e;
    throw e;
  }
}

/**
 * When a named format (-f, a backing format) fails to open, the file is often simply another
 * format: say that, and what it looks like, rather than what the wrong parser tripped on ("a
 * 4587520-byte file is too large for a VMDK descriptor"). Undefined when the format's own probe
 * claims the file: then it is one, damaged, and the parser's message is the right one.
 */
export async function notThisFormat(source: ByteSource, driver: FormatDriver, file: string, cause?: CorruptImageError): Promise<CorruptImageError | undefined> {
  if (!source.seekable) return undefined;
  const input = await readProbeInput(source).catch(() => undefined);
  if (!input) return undefined;
  let claimed;
  try {
    claimed = driver.probe(input);
  } catch {
    claimed = null;
  }
  if (claimed) return undefined;
  const seen = detectBytes(input);
  // Asked before any parsing (check, resize): only a file that is clearly another format is refused.
  if (!cause && seen.format === 'raw') return undefined;
  const looks =
    seen.format === 'raw' ? 'it has no signature of any format guestkit knows (raw data?)' : `it looks like a ${seen.format}${seen.subformat ? ` (${seen.subformat})` : ''} image`;
  const hint = seen.format === 'raw' ? 'leave out -f to read it as raw' : `leave out -f, or give -f ${seen.format}`;
  return new CorruptImageError(`not a ${driver.name} image: ${looks}; ${hint}`, { file, cause });
}

const openChild: OpenContext['openImage'] = async (path, format, parent) => {
  const depth = parent.depth + 1;
  if (depth > MAX_CHAIN_DEPTH) {
    throw new LimitExceededError(`backing chain is deeper than ${MAX_CHAIN_DEPTH} images`, { file: parent.file, field: 'backing chain' });
  }
  const key = canonical(path);
  if (parent.chain.includes(key)) {
    throw new CorruptImageError(`backing chain loops back to ${path}`, { file: parent.file, field: 'backing file' });
  }
  const confined = parent.path ? openedInside(path, { referrer: parent.path, what: 'backing file', allowOutside: parent.allowOutside }) : undefined;
  const source = retryingSource(await FileSource.open(path, path, confined));
  const ctx: OpenContext = { ...parent, file: path, path, depth, chain: [...parent.chain, key] };
  try {
    return await openWithDriver(source, format, ctx);
  } catch (e) {
    await source.close();
    throw e;
  }
};

export function rootContext(file: string, path: string | undefined, opts: OpenOptions): OpenContext {
  return {
    file,
    path,
    allowOutside: opts.allowOutside ?? false,
    openBacking: opts.openBacking ?? true,
    parallelism: opts.parallelism,
    depth: 0,
    chain: path ? [canonical(path)] : [],
    openImage: openChild,
  };
}

export async function openImage(path: string, opts: OpenOptions = {}): Promise<ImageReader> {
  if (!path) throw new UsageError('no image file given');
  refuseUrl(path);
  const file = await FileSource.open(path, opts.name ?? path);
  const source = retryingSource(opts.wrapSource ? opts.wrapSource(file) : file, opts.retry);
  try {
    // An OVA is not a disk format but a tar of disks: each is a byte range of it (src/ova/).
    if (!opts.format || opts.format === 'ova') {
      const ova = await openOvaDisk(source, opts.disk, diskOpeners, opts.format === 'ova');
      if (ova) return ova;
    }
    return await openWithDriver(source, opts.format, rootContext(opts.name ?? path, path, opts));
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Opens an image from an already-open source (a pipe, a buffer). */
export async function openSource(source: ByteSource, opts: OpenOptions = {}): Promise<ImageReader> {
  return openWithDriver(source, opts.format, rootContext(opts.name ?? source.name, undefined, opts));
}

/**
 * openPipe:
 * Opening an image that arrives on a pipe. A format its driver can read in one forward pass
 * (capabilities.streamRead, and streamReadable for the subformat its probe sees) is read from the
 * pipe itself. Any other is spooled to a sparse temporary file first (stream/spool.ts) and opened
 * from there. Unless the format was named, the spooled file is detected again: a pipe shows the
 * probes only its head, while the spooled file also has a tail, and a format whose mark is at the
 * end (a fixed VHD is raw data followed by a footer) would otherwise pass for raw, its footer for
 * data.
 */

/** Whether the image the pipe's head shows can be read from the pipe itself. */
function readableInOnePass(driver: FormatDriver, head: ProbeInput): boolean {
  if (!driver.capabilities.streamRead) return false;
  if (!driver.streamReadable) return true;
  const probed = probeWith(driver, head);
  return probed !== null && driver.streamReadable(probed);
}

export async function openPipe(pipe: ByteSource, opts: OpenOptions = {}): Promise<ImageReader> {
  const named = opts.format !== undefined ? byName(opts.format) : undefined;
  const head = await readProbeInput(pipe);
  // A tar of a VM's files: its disk is a byte range of the pipe (src/ova/pipe.ts).
  if ((!named || named.name === 'ova') && looksLikeOva(head.head)) return openOvaPipe(pipe, opts.disk, diskOpeners);
  const seen = named ?? detectBytes(head).driver;
  if (readableInOnePass(seen, head)) return openSource(pipe, { ...opts, format: seen.name });
  const spooled = await spoolToTempFile(pipe);
  try {
    const driver = named ?? (await detectSource(spooled)).driver;
    return await openSource(spooled, { ...opts, format: driver.name });
  } catch (e) {
    await spooled.close();
    throw e;
  }
}

/** How a disk inside an OVA is opened: by the same openers as any other image. */
export const diskOpeners: DiskOpeners = { openSource: (s, o) => openSource(s, o), openPipe: (s, o) => openPipe(s, o) };
