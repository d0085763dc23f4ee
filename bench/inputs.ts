/**
 * Deterministic benchmark inputs. Random data comes from an AES-CTR keystream with a fixed key
 * (fast and reproducible); text is a seeded word salad, which deflate compresses ~3:1 like logs
 * and source trees do.
 */
import { createCipheriv } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

const KEY = Buffer.alloc(16, 7);

/** `length` incompressible bytes, deterministic for a given stream id. */
export function randomBlock(length: number, stream: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(stream, 0);
  const c = createCipheriv('aes-128-ctr', KEY, iv);
  return c.update(Buffer.alloc(length));
}

const WORDS = 'the disk image block cluster grain sector table header footer stream write read virtual machine host guest kernel boot partition filesystem inode journal extent bitmap allocation offset length compress deflate zero data backing snapshot'.split(' ');

export function textBlock(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  let pos = 0;
  while (pos < length) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = WORDS[(x >>> 0) % WORDS.length];
    pos += out.write((x & 15) === 0 ? `${w}\n` : `${w} `, pos);
  }
  return out;
}

async function exists(path: string, size: number): Promise<boolean> {
  return stat(path).then((s) => s.size === size, () => false);
}

const MiB = 1024 * 1024;

/**
 * The mixed image: per 64 MiB stripe, 24 MiB incompressible, 16 MiB text, 8 MiB written zeros,
 * 16 MiB hole — 75 % allocated, a third of that compressible, as a used OS disk roughly is.
 */
export async function makeMixed(path: string, size: number): Promise<void> {
  if (await exists(path, size)) return;
  const fh = await open(path, 'w');
  const text = textBlock(16 * MiB, 42);
  const zeros = Buffer.alloc(8 * MiB);
  try {
    for (let base = 0, stripe = 0; base < size; base += 64 * MiB, stripe++) {
      const parts: Array<[number, Buffer]> = [
        [0, randomBlock(24 * MiB, stripe)],
        [24 * MiB, text],
        [40 * MiB, zeros],
      ];
      for (const [off, buf] of parts) {
        const n = Math.min(buf.length, size - base - off);
        if (n > 0) await fh.write(buf, 0, n, base + off);
      }
    }
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

/** Fully allocated incompressible data. */
export async function makeDense(path: string, size: number): Promise<void> {
  if (await exists(path, size)) return;
  const fh = await open(path, 'w');
  try {
    for (let off = 0, i = 0; off < size; off += 64 * MiB, i++) {
      const buf = randomBlock(Math.min(64 * MiB, size - off), 1000 + i);
      await fh.write(buf, 0, buf.length, off);
    }
  } finally {
    await fh.close();
  }
}
