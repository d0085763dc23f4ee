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
    subformat: z.enum(SUBFORMATS).optional().describe('VMDK flavour (default monolithicSparse)'),
    adapter_type: z.enum(ADAPTER_TYPES).optional().describe('Virtual adapter type (default ide)'),
    /** ddb.virtualHWVersion; qemu-img's "undefined" means the default. */
    hwversion: z.preprocess((v) => (v === 'undefined' ? undefined : v), zVersion.optional()).describe('VMDK hardware version (default 4)'),
    toolsversion: zVersion.optional().describe('VMware guest tools version'),
    /** Hardware version 6 (qemu-img's compat6); exclusive with hwversion. */
    compat6: zBool.optional().describe('VMDK version 6 image (default off)'),
    /** Header version 2 with zeroed-grain table entries allowed (sparse subformats). */
    zeroed_grain: zBool.optional().describe('Enable efficient zero writes using the zeroed-grain GTE feature (default off)'),
    /** Parent of a delta link, named relative to the new image's folder; it must be a VMDK. */
    backing_file: z.string().min(1).optional().describe('File name of a base image (a VMDK)'),
    backing_fmt: z.literal('vmdk', { message: 'the backing file of a VMDK must be a VMDK (qemu-img: "backing_file must be a vmdk image")' }).optional().describe('Image format of the base image (vmdk only)'),
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
