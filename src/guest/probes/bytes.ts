/** Small byte helpers shared by the probes. */
import type { BlockView } from '../view.js';

/** Bytes at [offset, offset+length) of the view, or undefined when the view is too small: "not mine", not an error. */
export async function readAt(view: BlockView, offset: number, length: number): Promise<Uint8Array | undefined> {
  if (offset < 0 || offset + length > view.size) return undefined;
  return view.read(offset, length);
}

export const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

export const startsWith = (b: Uint8Array, at: number, magic: string): boolean => latin1(b.subarray(at, at + magic.length)) === magic;

/** A fixed-size text field up to its first NUL (labels in superblocks), decoded as UTF-8 as blkid does. */
export function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return new TextDecoder('utf-8').decode(nul >= 0 ? b.subarray(0, nul) : b);
}

/** UTF-16 text up to its first NUL character. */
export function utf16(b: Uint8Array, littleEndian = true): string {
  let s = '';
  const d = dv(b);
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = d.getUint16(i, littleEndian);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** blkid trims trailing blanks from labels (blkid_probe_set_label → rtrim). */
export const rtrim = (s: string): string => s.replace(/[\s\0]+$/, '');

const HEX = (n: number): string => n.toString(16).padStart(2, '0');

/** 16 bytes in RFC 4122 order as blkid prints them. */
export function uuidText(b: Uint8Array): string {
  const h = Array.from(b.subarray(0, 16), HEX).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

export const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
