/**
 * `-o` options of the VHD writer: qemu-img's vpc options (subformat, force_size) plus
 * block_size, which qemu's vpc driver does not offer (it always writes 2 MiB blocks; Hyper-V
 * also uses 512 KiB) and which makes small-block images for tests and tools that want them.
 */
import * as z from 'zod';
import { isPowerOfTwo } from '../shared/bounds.js';
import { definedOnly, zBool, zSize, zUuid } from '../shared/options.js';
import type { FormatInfo } from '../types.js';
import { DEFAULT_BLOCK_SIZE } from './layout.js';

/**
 * Smallest block size we write: below 4 KiB the spec pads the bitmap to a sector but qemu computes
 * a zero-byte bitmap (block_size / 4096 rounded to 512), so qemu would misread such images.
 */
export const MIN_WRITE_BLOCK_SIZE = 4096;
/** Largest block size we write (Hyper-V's maximum is 256 MiB; a block is buffered whole when it arrives in pieces). */
export const MAX_WRITE_BLOCK_SIZE = 256 * 1024 * 1024;

export const vhdOptions = z
  .object({
    /** dynamic (default, as qemu-img) or fixed. */
    subformat: z.enum(['dynamic', 'fixed']).default('dynamic').describe('Type of virtual hard disk'),
    /** Keep the exact size (geometry 65535/16/255, creator "qem2") instead of rounding up to a CHS geometry. */
    force_size: zBool.default(false).describe('Use the exact size given rather than the nearest CHS geometry (default off)'),
    /** Dynamic disks only: bytes per block, a power of two from 4 KiB to 256 MiB. */
    block_size: zSize
      .refine((v) => isPowerOfTwo(v) && v >= MIN_WRITE_BLOCK_SIZE && v <= MAX_WRITE_BLOCK_SIZE, {
        message: `block_size must be a power of two from ${MIN_WRITE_BLOCK_SIZE} to ${MAX_WRITE_BLOCK_SIZE}`,
      })
      .optional()
      .describe('Bytes per block of a dynamic disk (default 2M)'),
    /**
     * Unique id (random when omitted). Not a qemu-img option: convert -n keeps an existing disk's
     * id, which differencing children check their parent by.
     */
    uuid: zUuid.optional().describe('Unique id of the disk (random by default)'),
  })
  .strict()
  .refine((o) => o.block_size === undefined || o.subformat === 'dynamic', { message: 'block_size applies to dynamic disks only', path: ['block_size'] });

export type VhdOptions = z.infer<typeof vhdOptions>;
export const defaultBlockSize = (o: VhdOptions): number => o.block_size ?? DEFAULT_BLOCK_SIZE;

/** Options for a new disk like the one `info` describes (convert -n): its type, block size and size rule. */
export function recreateVhdOptions(info: FormatInfo): Record<string, unknown> {
  const d = info.formatSpecific ?? {};
  const blockSize = d['block-size'];
  const writable = typeof blockSize === 'number' && isPowerOfTwo(blockSize) && blockSize >= MIN_WRITE_BLOCK_SIZE && blockSize <= MAX_WRITE_BLOCK_SIZE;
  return definedOnly({
    subformat: info.subformat,
    block_size: info.subformat === 'dynamic' && writable ? blockSize : undefined,
    // A size taken from current_size (Hyper-V, force_size) is kept exactly, not rounded to a CHS geometry.
    force_size: d['virtual-size-from'] === 'current-size' ? true : undefined,
    uuid: typeof d.uuid === 'string' ? d.uuid : undefined,
  });
}
