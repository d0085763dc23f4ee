import type { ProbeInput, ProbeResult } from '../types.js';
import { u32leAt } from '../shared/text.js';

/** VDI signature 0xBEDA107F, little-endian at 0x40, after the 64-byte pre-header text (VDICore.h). */
export const VDI_SIGNATURE = 0xbeda107f;

export function probeVdi({ head }: ProbeInput): ProbeResult | null {
  if (u32leAt(head, 0x40) !== VDI_SIGNATURE) return null;
  const type = u32leAt(head, 0x4c);
  const subformat = type === 1 ? 'dynamic' : type === 2 ? 'static' : type === 3 ? 'undo' : type === 4 ? 'diff' : undefined;
  return { score: 100, subformat };
}
