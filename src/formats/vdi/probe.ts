import type { ProbeInput, ProbeResult } from '../types.js';
import { u32leAt } from '../shared/text.js';
import { VDI_HEADER, VDI_SIGNATURE, imageTypeName } from './layout.js';

export { VDI_SIGNATURE };

/** VDI signature 0xBEDA107F, little-endian at 0x40, after the 64-byte pre-header text (VDICore.h). */
export function probeVdi({ head }: ProbeInput): ProbeResult | null {
  if (u32leAt(head, VDI_HEADER.offsetOf('signature')) !== VDI_SIGNATURE) return null;
  const type = u32leAt(head, VDI_HEADER.offsetOf('imageType'));
  return { score: 100, subformat: type !== undefined ? imageTypeName(type) : undefined };
}
