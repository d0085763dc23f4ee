/** `-o` options of the VHDX writer: qemu-img's (subformat, block_size, log_size, block_state_zero) plus logical_sector_size, which Hyper-V uses. */
import * as z from 'zod';
import { isPowerOfTwo } from '../shared/bounds.js';
import { definedOnly, zBool, zSize } from '../shared/options.js';
import type { FormatInfo } from '../types.js';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, MiB } from './layout.js';

/** The log we write is read whole by readers (ours bounds it at 64 MiB); qemu caps it at 4 GiB. */
export const MAX_WRITE_LOG_SIZE = 64 * MiB;

export const vhdxOptions = z
  .object({
    subformat: z.enum(['dynamic', 'fixed']).default('dynamic').describe('dynamic (blocks allocated as written) or fixed (every block allocated)'),
    /** Bytes per payload block: a power of two from 1 MiB to 256 MiB; by default qemu's choice from the disk size. */
    block_size: zSize
      .refine((v) => v === 0 || (isPowerOfTwo(v) && v >= MIN_BLOCK_SIZE && v <= MAX_BLOCK_SIZE), { message: 'block_size must be a power of two from 1 MiB to 256 MiB' })
      .optional()
      .describe('payload block size, a power of two from 1 MiB to 256 MiB (default: by disk size, as qemu-img)'),
    /** Log size: a multiple of 1 MiB (qemu's default, 1 MiB). */
    log_size: zSize
      .refine((v) => v >= MiB && v % MiB === 0 && v <= MAX_WRITE_LOG_SIZE, { message: `log_size must be a multiple of 1 MiB from 1 MiB to ${MAX_WRITE_LOG_SIZE / MiB} MiB` })
      .default(MiB)
      .describe('log size, a multiple of 1 MiB'),
    /** Blocks with no data are marked ZERO (on, qemu's default) rather than NOT_PRESENT. */
    block_state_zero: zBool.default(true).describe('mark blocks without data ZERO rather than NOT_PRESENT'),
    /** 512 or 4096; Hyper-V writes 4096 for 4Kn disks, qemu-img cannot. */
    logical_sector_size: z.preprocess((v) => (typeof v === 'string' ? Number(v) : v), z.union([z.literal(512), z.literal(4096)])).default(512).describe('logical sector size, 512 or 4096 (Hyper-V 4Kn; qemu-img 7.2 cannot open 4096)'),
  })
  .strict();

export type VhdxOptions = z.infer<typeof vhdxOptions>;

/** qemu's default block size (vhdx_co_create): larger disks get larger blocks. */
export function defaultBlockSize(virtualSize: number): number {
  const GiB = 1024 * MiB;
  if (virtualSize > 32 * 1024 * GiB) return 64 * MiB;
  if (virtualSize > 100 * GiB) return 32 * MiB;
  if (virtualSize > GiB) return 16 * MiB;
  return 8 * MiB;
}

export function recreateVhdxOptions(info: FormatInfo): Record<string, unknown> {
  const d = info.formatSpecific ?? {};
  return definedOnly({
    subformat: info.subformat === 'fixed' ? 'fixed' : 'dynamic',
    block_size: d['block-size'],
    logical_sector_size: d['logical-sector-size'],
  });
}
