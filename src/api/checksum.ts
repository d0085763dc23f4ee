/** SHA-256 of an image's virtual content (what a guest would read), whatever its format. */
import { createHash } from 'node:crypto';
import { openImage, type OpenOptions } from '../formats/open.js';
import type { ImageReader } from '../formats/types.js';

const ZERO_CHUNK = new Uint8Array(1 << 20);

export async function checksumReader(reader: ImageReader, onProgress?: (done: number, total: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Math.max(512, Math.min(2 * 1024 * 1024, reader.virtualSize));
  const buf = new Uint8Array(chunk);
  for await (const e of reader.extents()) {
    const end = e.offset + e.length;
    if (e.kind !== 'data') {
      // Holes are hashed as zeros without reading them.
      for (let off = e.offset; off < end; off += ZERO_CHUNK.length) hash.update(ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, end - off)));
    } else {
      for (let off = e.offset; off < end; off += chunk) hash.update(await reader.read(off, Math.min(chunk, end - off), buf));
    }
    onProgress?.(end, reader.virtualSize);
  }
  return hash.digest('hex');
}

export async function checksumImage(path: string, opts: OpenOptions = {}): Promise<string> {
  const r = await openImage(path, opts);
  try {
    return await checksumReader(r);
  } finally {
    await r.close();
  }
}
