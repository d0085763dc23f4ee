import type { ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual, u32beAt } from '../shared/text.js';

export const VHD_COOKIE = 'conectix';
const DISK_TYPES: Record<number, string> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };

/** One's complement of the byte sum with the checksum field (offset 64) taken as zero (VHD spec, "Checksum"). */
export function vhdChecksum(record: Uint8Array, checksumAt = 64): number {
  let sum = 0;
  for (let i = 0; i < record.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += record[i];
  return ~sum >>> 0;
}

/**
 * Dynamic and differencing disks start with a copy of the footer; a fixed disk has its footer only
 * in the last 512 bytes, which QEMU's head-only probe misses (it calls them raw). We look at the tail
 * too, and accept it only when its checksum is right, so random data never passes for a VHD.
 */
export function probeVhd({ head, tail }: ProbeInput): ProbeResult | null {
  if (bytesEqual(head, 0, VHD_COOKIE)) {
    const t = u32beAt(head, 60);
    return { score: 100, subformat: t !== undefined ? DISK_TYPES[t] : undefined };
  }
  if (tail.length >= 512) {
    const footer = tail.subarray(tail.length - 512);
    if (bytesEqual(footer, 0, VHD_COOKIE) && u32beAt(footer, 64) === vhdChecksum(footer) && u32beAt(footer, 60) === 2) {
      return { score: 100, subformat: 'fixed' };
    }
  }
  return null;
}
