/**
 * An `ovf:compression="gzip"` member can only be inflated forward, so it is read like a pipe:
 * its stored bytes (one member or its chunks) feed a gunzip stream, and the result is opened the
 * way a piped image is (formats/open.ts, openPipe): in one pass where the format allows
 * (streamOptimized VMDK), else spooled to a temporary file first.
 */
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CorruptImageError, GuestkitError } from '../errors.js';
import { StreamSource, type ByteSource } from '../stream/source.js';

/** Stored bytes are fed in 1 MiB reads: large enough for zlib, small enough to bound memory. */
const FEED = 1 << 20;

export function gunzipped(stored: ByteSource, size: number, name: string): StreamSource {
  async function* feed(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < size; at += FEED) yield (await stored.read(at, Math.min(FEED, size - at))).slice();
  }
  const input = Readable.from(feed());
  const gunzip = createGunzip();
  // pipe() keeps backpressure end to end; errors become typed ones naming the member.
  const out = new PassThrough();
  input.pipe(gunzip).pipe(out);
  const fail = (e: Error) => out.destroy(e instanceof GuestkitError ? e : new CorruptImageError(`gzip-compressed member does not inflate: ${e.message}`, { file: name, cause: e }));
  input.on('error', fail);
  gunzip.on('error', fail);
  return new StreamSource(out, name);
}
