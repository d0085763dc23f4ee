/**
 * `-o` options of the VMDK writer, with qemu-img's names and values (docs/FORMATS.md §8 "vmdk = size,
 * adapter_type, backing_file, backing_fmt, compat6, hwversion, subformat, toolsversion,
 * zeroed_grain"). A backing file makes a delta link (parentFileNameHint, parentCID).
 */
import * as z from 'zod';
import { definedOnly, zBool } from '../shared/options.js';
import type { FormatInfo } from '../types.js';

export const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
export type Subformat = (typeof SUBFORMATS)[number];
export const ADAPTER_TYPES = ['ide', 'lsilogic', 'buslogic', 'legacyESX'] as const;
export type AdapterType = (typeof ADAPTER_TYPES)[number];

/** A version number written into the descriptor as a decimal string. */
const zVersion = z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().regex(/^\d{1,10}$/, 'must be a decimal number'));

export const vmdkOptions = z
  .object({
    subformat: z.enum(SUBFORMATS).optional(),
    adapter_type: z.enum(ADAPTER_TYPES).optional(),
    /** ddb.virtualHWVersion; qemu-img's "undefined" means the default. */
    hwversion: z.preprocess((v) => (v === 'undefined' ? undefined : v), zVersion.optional()),
    toolsversion: zVersion.optional(),
    /** Hardware version 6 (qemu-img's compat6); exclusive with hwversion. */
    compat6: zBool.optional(),
    /** Header version 2 with zeroed-grain table entries allowed (sparse subformats). */
    zeroed_grain: zBool.optional(),
    /** Parent of a delta link, named relative to the new image's folder; it must be a VMDK. */
    backing_file: z.string().min(1).optional(),
    backing_fmt: z.literal('vmdk', { message: 'the backing file of a VMDK must be a VMDK (qemu-img: "backing_file must be a vmdk image")' }).optional(),
  })
  .strict();

export type VmdkOptions = z.infer<typeof vmdkOptions>;

/** Options for a new disk like the one `info` describes (convert -n): its subformat, adapter and hardware version. */
export function recreateVmdkOptions(info: FormatInfo): Record<string, unknown> {
  const d = info.formatSpecific ?? {};
  const adapter = d['adapter-type'];
  return definedOnly({
    subformat: info.subformat,
    adapter_type: (ADAPTER_TYPES as readonly unknown[]).includes(adapter) ? adapter : undefined,
    hwversion: d['hw-version'],
  });
}
