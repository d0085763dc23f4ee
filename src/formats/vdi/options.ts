/** `-o` options of the VDI writer, as qemu-img's vdi driver: only `static`. */
import * as z from 'zod';
import { zBool } from '../shared/options.js';
import type { FormatInfo } from '../types.js';

export const vdiOptions = z
  .object({
    /** Preallocate every block in place (image type "fixed") instead of appending blocks as data arrives. */
    static: zBool.default(false),
  })
  .strict();

export type VdiOptions = z.infer<typeof vdiOptions>;

/** Options for a new image like the one `info` describes (convert -n). */
export function recreateVdiOptions(info: FormatInfo): Record<string, unknown> {
  return { static: info.subformat === 'static' };
}
