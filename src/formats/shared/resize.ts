/**
 * What every format's in-place resize shares (the request and result types are in ../types.ts): turning `+SIZE` /
 * `-SIZE` into an absolute size against the current size as the format measures it, the shrink
 * rules qemu-img applies (block/qemu-img.c img_resize), and the one file handle pair a resize
 * reads and writes through.
 *
 * Each format decides its own rounding (raw keeps bytes, qcow2 needs sectors, VHD a CHS geometry,
 * VDI sectors) before the shrink rule is applied to the size it would really write.
 */
import { UnsupportedFeatureError, UsageError } from '../../errors.js';
import { FileSink, writeZeros as writeZerosTo } from '../../stream/sink.js';
import { FileSource } from '../../stream/source.js';
import type { ResizeOptions, ResizeTarget } from '../types.js';
import { writeSkippingZeros } from './sparse-write.js';

/** The requested size in bytes, before any rounding of the format. */
export function targetSize(target: ResizeTarget, current: number, file: string): number {
  const size = 'size' in target ? target.size : current + target.delta;
  if (!Number.isSafeInteger(size)) throw new UsageError(`new image size ${size} is not a whole number of bytes below 2^53`, { file });
  // qemu-img: "New image size must be positive" (0 included).
  if (size <= 0) throw new UsageError('new image size must be positive', { file });
  return size;
}

/**
 * qemu-img's rule: a smaller size needs --shrink. `canShrink` false means the format cannot shrink
 * at all, which is said whether or not --shrink was given.
 */
export function checkShrink(newSize: number, current: number, opts: ResizeOptions, format: string, canShrink: boolean, why = ''): void {
  if (newSize >= current) return;
  if (!canShrink) {
    throw new UnsupportedFeatureError(`shrinking ${format} images is not supported${why ? `: ${why}` : ''}`, { file: opts.ctx.file });
  }
  if (!opts.shrink) {
    throw new UsageError(
      `use the --shrink option to perform a shrink operation (${current} → ${newSize} bytes deletes all data beyond the new end)`,
      { file: opts.ctx.file },
    );
  }
}

/** A read handle (the format's parsers take a ByteSource) and a write handle on one image file. */
export interface ImageFile {
  source: FileSource;
  sink: FileSink;
  close(): Promise<void>;
}

export async function openForResize(path: string, file: string): Promise<ImageFile> {
  const source = await FileSource.open(path, file);
  let sink: FileSink;
  try {
    sink = await FileSink.open(path, 'r+', file);
  } catch (e) {
    await source.close();
    throw e;
  }
  return {
    source,
    sink,
    async close() {
      await sink.close();
      await source.close();
    },
  };
}

/** Writes zeros over [from, to) of the image (bytes that must read as zeros and may not). */
export async function writeZeros(f: ImageFile, from: number, to: number): Promise<void> {
  await writeZerosTo(f.sink, from, Math.max(0, to - from));
}

/**
 * Copies [from, from + length) of the image to `to` (a block moving out of a table's way). Where the
 * destination lies past the end the file had when opened, zero runs stay holes (they read as zeros),
 * but the last sector is always written, so the file covers the whole copy.
 */
export async function copyWithin(f: ImageFile, from: number, to: number, length: number): Promise<void> {
  const buf = new Uint8Array(Math.min(4 * 1024 * 1024, length));
  for (let done = 0; done < length; done += buf.length) {
    const n = Math.min(buf.length, length - done);
    const got = (await f.source.readUpTo(from + done, n, buf.subarray(0, n))).length;
    if (got < n) buf.fill(0, got, n); // past the end of the file: zeros, as qemu reads them
    const bytes = buf.subarray(0, n);
    if (to + done < f.source.size) {
      await f.sink.write(to + done, bytes);
      continue;
    }
    const keep = done + n === length ? n - Math.min(n, 512) : n;
    await writeSkippingZeros(f.sink, to + done, bytes.subarray(0, keep));
    if (keep < n) await f.sink.write(to + done + keep, bytes.subarray(keep));
  }
}

/** Runs `body` on the image opened for resizing, closing it whatever happens. */
export async function withImageFile<T>(path: string, file: string, body: (f: ImageFile) => Promise<T>): Promise<T> {
  const f = await openForResize(path, file);
  try {
    return await body(f);
  } finally {
    await f.close();
  }
}
