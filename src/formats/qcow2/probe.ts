import type { ProbeInput, ProbeResult } from '../types.js';
import { u32beAt } from '../shared/text.js';
import { QCOW2_HEADER_V2, QCOW2_MAGIC } from './layout.js';

const MAGIC_AT = QCOW2_HEADER_V2.offsetOf('magic');
const VERSION_AT = QCOW2_HEADER_V2.offsetOf('version');

/** qcow2 v2/v3 (QEMU probes version >= 2; version 1 is the legacy qcow format). */
export function probeQcow2({ head }: ProbeInput): ProbeResult | null {
  if (u32beAt(head, MAGIC_AT) !== QCOW2_MAGIC) return null;
  const version = u32beAt(head, VERSION_AT);
  if (version === undefined || version < 2) return null;
  return { score: 100, subformat: `v${version}` };
}

export function probeQcow1({ head }: ProbeInput): ProbeResult | null {
  if (u32beAt(head, MAGIC_AT) !== QCOW2_MAGIC || u32beAt(head, VERSION_AT) !== 1) return null;
  return { score: 100, subformat: 'v1' };
}
