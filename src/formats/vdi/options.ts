/** `-o` options of the VDI writer, as qemu-img's vdi driver: only `static`. */
import * as z from 'zod';
import { zBool, zUuid } from '../shared/options.js';
import type { FormatInfo } from '../types.js';

export const vdiOptions = z
  .object({
    /** Preallocate every block in place (image type "fixed") instead of appending blocks as data arrives. */
    static: zBool.default(false).describe('Preallocate every block (a fixed image; default off)'),
    /**
     * Image UUID (random when omitted). Not a qemu-img option: convert -n keeps an existing
     * image's UUID, which VirtualBox's media registry and child disks know it by.
     */
    uuid: zUuid.optional().describe('Image UUID (random by default)'),
  })
  .strict();

export type VdiOptions = z.infer<typeof vdiOptions>;

/** Options for a new image like the one `info` describes (convert -n). */
export function recreateVdiOptions(info: FormatInfo): Record<string, unknown> {
  const uuid = info.formatSpecific?.['image-uuid'];
  return { static: info.subformat === 'static', ...(typeof uuid === 'string' ? { uuid } : {}) };
}
