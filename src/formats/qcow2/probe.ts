import type { ProbeInput, ProbeResult } from '../types.js';
import { u32beAt } from '../shared/text.js';

/** "QFI\xFB" at offset 0 (qcow2 spec, header field `magic`). */
export const QCOW_MAGIC = 0x514649fb;

/** qcow2 v2/v3 (QEMU probes version >= 2; version 1 is the legacy qcow format). */
export function probeQcow2({ head }: ProbeInput): ProbeResult | null {
  if (u32beAt(head, 0) !== QCOW_MAGIC) return null;
  const version = u32beAt(head, 4);
  if (version === undefined || version < 2) return null;
  return { score: 100, subformat: `v${version}` };
}

export function probeQcow1({ head }: ProbeInput): ProbeResult | null {
  if (u32beAt(head, 0) !== QCOW_MAGIC || u32beAt(head, 4) !== 1) return null;
  return { score: 100, subformat: 'v1' };
}
