/**
 * An independent walk over a streamOptimized file, marker by marker, written from docs/FORMATS.md §3.5
 * without the reader's code: what the writer emitted, in order, for layout assertions.
 */
import { SPARSE_HEADER, type SparseHeader } from '../../src/formats/vmdk/layout.js';

export interface StreamWalk {
  header: SparseHeader;
  footer: SparseHeader;
  size: number;
  /** 'grain' | 'GT' | 'GD' | 'FOOTER' | 'EOS' in file order (grains collapsed into runs). */
  sequence: string[];
  grainLbas: number[];
  gdSector: number;
  eosAt: number;
  /** Every GT marker follows the grains of its span and precedes any grain of a later span. */
  gtsAfterTheirGrains: boolean;
  /** Every grain's data starts with a zlib header (RFC 1950). */
  zlibHeaders: boolean;
}

const TYPES = ['EOS', 'GT', 'GD', 'FOOTER'];

export function walkStream(bytes: Uint8Array): StreamWalk {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = SPARSE_HEADER.parse(bytes);
  const grainSectors = Number(header.grainSize);
  const span = grainSectors * header.numGTEsPerGT;
  const sequence: string[] = [];
  const grainLbas: number[] = [];
  let pos = header.overHead * 512;
  let footer: SparseHeader | undefined;
  let gdSector = -1;
  let eosAt = -1;
  let ok = true;
  let zlib = true;
  let lastGtSpan = -1;
  let pendingSpan = -1;
  while (pos + 512 <= buf.length) {
    const val = buf.readBigUInt64LE(pos);
    const size = buf.readUInt32LE(pos + 8);
    if (size > 0) {
      const lba = Number(val);
      const s = Math.floor(lba / span);
      if (pendingSpan >= 0 && s !== pendingSpan) ok = false; // a span ended without its GT
      if (s <= lastGtSpan) ok = false; // a grain after its span's GT
      pendingSpan = s;
      grainLbas.push(lba);
      if (buf[pos + 12] !== 0x78) zlib = false;
      if (sequence.at(-1) !== 'grain') sequence.push('grain');
      pos += Math.ceil((12 + size) / 512) * 512;
      continue;
    }
    const type = buf.readUInt32LE(pos + 12);
    const name = TYPES[type] ?? `type${type}`;
    sequence.push(name);
    if (name === 'EOS') {
      eosAt = pos;
      break;
    }
    if (name === 'GT') {
      lastGtSpan = pendingSpan;
      pendingSpan = -1;
    }
    if (name === 'GD') gdSector = pos / 512 + 1;
    if (name === 'FOOTER') footer = SPARSE_HEADER.parse(bytes, {}, pos + 512);
    pos += 512 + Number(val) * 512;
  }
  if (pendingSpan >= 0) ok = false;
  return { header, footer: footer!, size: buf.length, sequence, grainLbas, gdSector, eosAt, gtsAfterTheirGrains: ok, zlibHeaders: zlib };
}
