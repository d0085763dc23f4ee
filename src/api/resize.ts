/**
 * Changing the virtual size of an image in place, like `qemu-img resize`. The format's driver does
 * the work (src/formats/<format>/resize.ts); here the format is found and the size is read.
 * Only the named image changes: a backing file is never written.
 */
import { UnsupportedFeatureError, UsageError } from '../errors.js';
import { notThisFormat, rootContext } from '../formats/open.js';
import { FileSource } from '../stream/source.js';
import { byName } from '../formats/registry.js';
import { refuseUrl } from '../formats/shared/url.js';
import { parseSize } from '../formats/shared/options.js';
import type { ResizeResult, ResizeTarget } from '../formats/types.js';
import { detectFormat } from './info.js';

export type { ResizeResult, ResizeTarget } from '../formats/types.js';

export interface ResizeImageOptions {
  image: string;
  /** A size in bytes, or text as qemu-img takes it: "10G" (absolute), "+1G" or "-512M" (relative to the current size). */
  size: number | string;
  /** Image format (detected when omitted). */
  format?: string;
  /** Allow the image to become smaller; data past the new end is lost. */
  shrink?: boolean;
  /** Read a qcow2 backing image's size even outside the image's folder (see qcow2/resize.ts). */
  allowOutside?: boolean;
}

/** "10G" → { size }, "+1G" → { delta: +1 GiB }, "-1G" → { delta: −1 GiB } (parseSize's suffixes). */
export function parseResizeSize(text: string): ResizeTarget {
  const t = text.trim();
  if (t.startsWith('+')) return { delta: parseSize(t.slice(1), 'size change') };
  if (t.startsWith('-')) return { delta: -parseSize(t.slice(1), 'size change') };
  return { size: parseSize(t) };
}

export async function resize(opts: ResizeImageOptions): Promise<ResizeResult> {
  refuseUrl(opts.image);
  let target: ResizeTarget;
  try {
    target = typeof opts.size === 'number' ? { size: opts.size } : parseResizeSize(opts.size);
  } catch (e) {
    // Name the image in the message, as every other refusal does.
    throw e instanceof UsageError ? new UsageError(e.detail, { file: opts.image }) : e;
  }
  const driver = byName(opts.format ?? (await detectFormat(opts.image)).format);
  if (!driver.resize) throw new UnsupportedFeatureError(`resizing ${driver.name} images is not supported`, { file: opts.image });
  // A named format's resizer would rewrite another format's bytes: refuse a file that is clearly something else.
  if (opts.format) {
    const source = await FileSource.open(opts.image);
    const other = await notThisFormat(source, driver, opts.image).finally(() => source.close());
    if (other) throw other;
  }
  const ctx = rootContext(opts.image, opts.image, { allowOutside: opts.allowOutside, openBacking: false });
  return driver.resize(opts.image, target, { shrink: opts.shrink ?? false, ctx });
}
