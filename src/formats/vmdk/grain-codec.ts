/**
 * zlib (RFC 1950) coding of stream-optimized grains (docs/FORMATS.md §3.5), tuned for the one shape
 * they have: a single grain in, a single grain out.
 *
 * Grains inflate through stream/compress.ts (synchronously, capped; measured there). Deflate is
 * the other way round — ~1 ms of CPU per grain — so it stays async, one job per grain,
 * on every core; a single output chunk saves it a concat.
 *
 * Grains deflate cannot shrink are written as stored blocks by hand: a zlib header, raw blocks,
 * the Adler-32 — memory speed, where even zlib level 0 pays a thread-pool round trip and copies.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { inflateCapped, inflateCappedInto } from '../../stream/compress.js';

const deflateAsync = promisify(zlib.deflate) as (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>;

/** zlib's deflateBound(): the most a zlib stream of `n` input bytes can take. */
export const zlibBound = (n: number): number => n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 6;

export interface Where {
  file?: string;
  field?: string;
  offset?: number;
}

/** Inflates to at most `max` bytes (a grain): more is corrupt, never a bigger allocation. */
export function inflateGrain(data: Uint8Array, max: number, where: Where): Buffer {
  return inflateCapped('zlib', data, max, where, 'compressed grain');
}

/** inflateGrain() into `dest` (a grain's room), without a buffer per grain; returns the bytes produced. */
export function inflateGrainInto(data: Uint8Array, dest: Uint8Array, where: Where): number {
  return inflateCappedInto('zlib', data, dest, 0, dest.length, where, 'compressed grain');
}

/** Deflates one grain at `level` (1–9) into a zlib stream, on the thread pool. */
export function deflateGrain(data: Uint8Array, level: number): Promise<Buffer> {
  return deflateAsync(data, { level, chunkSize: zlibBound(data.length) });
}

/** Largest stored block (RFC 1951 §3.2.4: LEN is 16 bits). */
const MAX_STORED = 0xffff;
/** Adler-32 modulus, and how many bytes can be summed before s2 may overflow 2^32 (zlib's NMAX). */
const ADLER_MOD = 65521;
const ADLER_NMAX = 5552;

export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < data.length; ) {
    const end = Math.min(data.length, i + ADLER_NMAX);
    for (; i < end; i++) {
      a += data[i];
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream holding `data` in stored (uncompressed) deflate blocks. */
export function storeGrain(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_STORED));
  const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
  // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest, no dictionary; 0x7801 % 31 == 0).
  out[0] = 0x78;
  out[1] = 0x01;
  let at = 2;
  for (let i = 0, k = 0; k < blocks; k++) {
    const n = Math.min(MAX_STORED, data.length - i);
    out[at] = k === blocks - 1 ? 1 : 0; // BFINAL on the last block, BTYPE 00
    out[at + 1] = n & 0xff;
    out[at + 2] = n >>> 8;
    out[at + 3] = ~n & 0xff;
    out[at + 4] = (~n >>> 8) & 0xff;
    out.set(data.subarray(i, i + n), at + 5);
    at += 5 + n;
    i += n;
  }
  new DataView(out.buffer).setUint32(at, adler32(data), false);
  return out;
}
