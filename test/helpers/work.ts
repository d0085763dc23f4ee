/** Per-test scratch folders under the OS temp dir, removed after the file's tests. */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll } from 'vitest';
import { openImage, type OpenOptions } from '../../src/formats/open.js';

export function workDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `guestkit-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}


/** Deterministic pseudo-random bytes (xorshift), so tests and fixtures are reproducible. */
export function pseudoRandom(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The whole virtual disk of an image file, as our reader gives it. */
export async function readImage(path: string, opts: OpenOptions = {}): Promise<Buffer> {
  const r = await openImage(path, opts);
  try {
    return Buffer.from(await r.read(0, r.virtualSize));
  } finally {
    await r.close();
  }
}
