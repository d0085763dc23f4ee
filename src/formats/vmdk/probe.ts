/**
 * Detection (docs/FORMATS.md §7): "KDMV" or "COWD" at offset 0, or a text descriptor whose first real
 * line is `version=1|2|3` (QEMU's vmdk_probe). The subformat is named from the header's
 * compression (as QEMU names it) or the descriptor's createType. Never throws.
 */
import type { ProbeInput, ProbeResult } from '../types.js';
import { textUntilNul, u32leAt } from '../shared/text.js';
import { COMPRESSION_DEFLATE, COWD_MAGIC_LE, SECTOR, SPARSE_HEADER, SPARSE_MAGIC_LE } from './layout.js';

const CREATE_TYPE = /^\s*createType\s*=\s*"([^"]*)"/m;
/** Fields of the sparse header read without parsing the whole record (a probe sees a partial head). */
const DESCRIPTOR_OFFSET_AT = SPARSE_HEADER.offsetOf('descriptorOffset');
const COMPRESS_ALGORITHM_AT = SPARSE_HEADER.offsetOf('compressAlgorithm');

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
  const magic = u32leAt(head, 0);
  if (magic === SPARSE_MAGIC_LE) {
    if (head.length > COMPRESS_ALGORITHM_AT + 1 && (head[COMPRESS_ALGORITHM_AT] | (head[COMPRESS_ALGORITHM_AT + 1] << 8)) === COMPRESSION_DEFLATE) {
      return { score: 100, subformat: 'streamOptimized' };
    }
    // An embedded descriptor names the createType (absent in the extents of a split disk).
    const descSector = u32leAt(head, DESCRIPTOR_OFFSET_AT) ?? 0;
    const at = descSector * SECTOR;
    const m = descSector > 0 && at < head.length ? CREATE_TYPE.exec(textUntilNul(head.subarray(at))) : null;
    return { score: 100, subformat: m?.[1] ?? 'monolithicSparse' };
  }
  if (magic === COWD_MAGIC_LE) return { score: 100, subformat: 'vmfsSparse' };
  if (looksLikeDescriptor(head)) {
    const m = CREATE_TYPE.exec(textUntilNul(head));
    return { score: 100, subformat: m?.[1] ?? 'descriptor' };
  }
  return null;
}
