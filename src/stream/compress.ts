/**
 * Capped decompression shared by formats. Node's async zlib API runs on the libuv thread pool,
 * so several jobs in flight use every core without worker_threads; the OrderedPool
 * (ordered-pool.ts) keeps their results in order. Each format's compressor lives with the format
 * (qcow2/compressed.ts, vmdk/grain-codec.ts): window sizes and stored-block handling differ.
 *
 * Every inflate is capped at the size the format promises (a cluster, a grain): a hostile image
 * cannot make us allocate more than that (no zip bombs).
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { CorruptImageError } from '../errors.js';

const inflateRawAsync = promisify(zlib.inflateRaw) as (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>;
const inflateAsync = promisify(zlib.inflate) as (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>;

export interface Where {
  file?: string;
  offset?: number;
  field?: string;
}

function decompressError(kind: string, e: unknown, where: Where): CorruptImageError {
  const msg = (e as Error)?.message ?? String(e);
  return new CorruptImageError(`${kind} data does not decompress: ${msg}`, { ...where, cause: e });
}

/**
 * Inflates raw DEFLATE expecting exactly `expected` bytes. Trailing garbage after the stream is
 * tolerated (qcow2 hands over whole sectors); a stream that yields less is corrupt.
 */
export async function inflateRawExact(data: Uint8Array, expected: number, where: Where): Promise<Buffer> {
  let out: Buffer;
  try {
    // windowBits 15 accepts streams made with any smaller window.
    out = await inflateRawAsync(data, { maxOutputLength: expected, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new CorruptImageError(`compressed data inflates to more than ${expected} bytes`, where);
    throw decompressError('deflate', e, where);
  }
  if (out.length !== expected) throw new CorruptImageError(`compressed data inflates to ${out.length} bytes, expected ${expected}`, where);
  return out;
}

/** Inflates zlib-format data to at most `max` bytes; returns what it produced. */
export async function inflateZlibCapped(data: Uint8Array, max: number, where: Where): Promise<Buffer> {
  try {
    return await inflateAsync(data, { maxOutputLength: max, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new CorruptImageError(`compressed data inflates to more than ${max} bytes`, where);
    throw decompressError('zlib', e, where);
  }
}

