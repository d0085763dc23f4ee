/**
 * What the writer is told about one chunk that was read: the chunk cut into pieces of data, of
 * zeros (which writers turn into holes or unallocated entries) and, for an overlay output (convert
 * -B), of bytes the base already holds. Pure, so tested on its own.
 */
import { rangeIsZero, scanZeroRuns, view } from './zero.js';

export type PieceKind = 'data' | 'zero' | 'leave';
/** [kind, start, end) within the chunk. */
export type Piece = [PieceKind, number, number];

/**
 * Zero runs of at least `zeroUnit` bytes (aligned to absolute offsets, which chunk boundaries
 * already are) become zero pieces; `zeroUnit` 0 (-S 0) makes the whole chunk data.
 */
export function zeroPieces(bytes: Uint8Array, zeroUnit: number): Piece[] {
  if (zeroUnit === 0) return [['data', 0, bytes.length]];
  const pieces: Piece[] = [];
  scanZeroRuns(bytes, zeroUnit, (s, e, z) => pieces.push([z ? 'zero' : 'data', s, e]));
  return pieces;
}

/** Overlay output, per writer unit of `block` bytes: the same as the base → leave; zeros → stored zeros; else data. */
export function overlayPieces(bytes: Uint8Array, baseBytes: Uint8Array, block: number): Piece[] {
  const src = view(bytes);
  const old = view(baseBytes);
  const pieces: Piece[] = [];
  for (let s = 0; s < src.length; s += block) {
    const e = Math.min(src.length, s + block);
    const kind: PieceKind = src.compare(old, s, e, s, e) === 0 ? 'leave' : rangeIsZero(src, s, e) ? 'zero' : 'data';
    const last = pieces[pieces.length - 1];
    if (last?.[0] === kind) last[2] = e;
    else pieces.push([kind, s, e]);
  }
  return pieces;
}
