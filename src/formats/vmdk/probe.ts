import type { ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual, textUntilNul, u32leAt } from '../shared/text.js';

/** Hosted sparse extent magic "KDMV" and ESX COW delta magic "COWD" at offset 0. */
export const SPARSE_MAGIC = 'KDMV';
export const COWD_MAGIC = 'COWD';
/** Header flag: grains are compressed (set by streamOptimized writers). */
export const FLAG_COMPRESSED = 0x10000;

const CREATE_TYPE = /^\s*createType\s*=\s*"([^"]*)"/m;

/**
 * QEMU's descriptor probe: skip comment and blank lines; the first real line must be exactly
 * `version=1|2|3` ending in \n or \r\n. Anything else (another key first, binary data) is not VMDK.
 */
export function looksLikeDescriptor(head: Uint8Array): boolean {
  const text = textUntilNul(head.subarray(0, Math.min(head.length, 4096)));
  for (const line of text.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l.trim() === '' || l.startsWith('#')) continue;
    return /^version=[123]$/.test(l) && text.includes(`${line}\n`);
  }
  return false;
}

export function probeVmdk({ head }: ProbeInput): ProbeResult | null {
  if (bytesEqual(head, 0, SPARSE_MAGIC)) {
    const flags = u32leAt(head, 8) ?? 0;
    if (flags & FLAG_COMPRESSED) return { score: 100, subformat: 'streamOptimized' };
    // An embedded descriptor at sector 1 names the createType (absent in split extents).
    const descSector = u32leAt(head, 28) ?? 0;
    const m = descSector > 0 && descSector * 512 < head.length ? CREATE_TYPE.exec(textUntilNul(head.subarray(descSector * 512))) : null;
    return { score: 100, subformat: m?.[1] ?? 'monolithicSparse' };
  }
  if (bytesEqual(head, 0, COWD_MAGIC)) return { score: 100, subformat: 'vmfsSparse' };
  if (looksLikeDescriptor(head)) {
    const m = CREATE_TYPE.exec(textUntilNul(head));
    return { score: 100, subformat: m?.[1] ?? 'descriptor' };
  }
  return null;
}
