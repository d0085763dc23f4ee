import type { ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual, u32beAt } from '../shared/text.js';
import { DiskType, FOOTER, FOOTER_CHECKSUM_AT, FOOTER_SIZE, VHD_COOKIE, diskTypeName, vhdChecksum } from './layout.js';

const DISK_TYPE_AT = FOOTER.offsetOf('diskType');

export { VHD_COOKIE, vhdChecksum };

/**
 * Dynamic and differencing disks start with a copy of the footer; a fixed disk has its footer only
 * in the last 512 bytes, which QEMU's head-only probe misses (it calls them raw). We look at the tail
 * too, and accept it only when its checksum is right, so random data never passes for a VHD.
 */
export function probeVhd({ head, tail }: ProbeInput): ProbeResult | null {
  if (bytesEqual(head, 0, VHD_COOKIE)) {
    const t = u32beAt(head, DISK_TYPE_AT);
    return { score: 100, subformat: t !== undefined ? diskTypeName(t) : undefined };
  }
  if (tail.length >= FOOTER_SIZE) {
    const footer = tail.subarray(tail.length - FOOTER_SIZE);
    if (bytesEqual(footer, 0, VHD_COOKIE) && u32beAt(footer, FOOTER_CHECKSUM_AT) === vhdChecksum(footer) && u32beAt(footer, DISK_TYPE_AT) === DiskType.fixed) {
      return { score: 100, subformat: 'fixed' };
    }
  }
  return null;
}
