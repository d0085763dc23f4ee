/**
 * Shared pieces of the resize tests: qemu-img's view of an image (size, check, raw content) and
 * images with known content, made by qemu-img or by our writers.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { expectQemuCheckClean as expectCheckClean, qemuImg, qemuInfoJson, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom } from '../helpers/work.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** qemu's name of our format names. */
export const qemuFormat = (fmt: string): string => (fmt === 'vhd' ? 'vpc' : fmt);

export function qemuVirtualSize(path: string, fmt: string): number {
  return qemuInfoJson(path, qemuFormat(fmt))['virtual-size'] as number;
}

/** `qemu-img check` finds no errors and no leaks. */
export function expectQemuCheckClean(path: string, fmt: string): void {
  expectCheckClean(path, qemuFormat(fmt));
}

/** The virtual disk as `qemu-img convert -O raw` reads it. */
export function qemuContent(path: string, fmt: string, scratch: string): Buffer {
  const out = join(scratch, `content-${process.hrtime.bigint()}.raw`);
  qemuToRaw(path, out, qemuFormat(fmt));
  return readFileSync(out);
}

/** `before` followed by zeros up to `size` (or cut to `size`). */
export function grownContent(before: Uint8Array, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.set(before.subarray(0, Math.min(size, before.length)));
  return b;
}

/** Random data at the start, in the middle and right up to the end of a `size`-byte disk. */
export function contentFor(size: number, seed: number): Uint8Array {
  const d = new Uint8Array(size);
  const run = Math.min(64 * KiB, Math.floor(size / 4));
  d.set(pseudoRandom(run, seed), 0);
  d.set(pseudoRandom(run, seed + 1), Math.floor(size / 2 / 512) * 512);
  d.set(pseudoRandom(run, seed + 2), size - run); // data near the old end
  return d;
}

/** An image of `content` in `fmt`, written by qemu-img (`by: 'qemu'`) or by guestkit's writer. */
export async function makeImage(dir: string, name: string, fmt: string, content: Uint8Array, options: string, by: 'qemu' | 'ours'): Promise<string> {
  const raw = join(dir, `${name}.src.raw`);
  writeFileSync(raw, content);
  const out = join(dir, name);
  if (by === 'qemu') qemuImg('convert', '-f', 'raw', '-O', qemuFormat(fmt), ...(options ? ['-o', options] : []), raw, out);
  else await convert({ source: raw, output: out, sourceFormat: 'raw', format: fmt, options, durable: false });
  return out;
}

/** A copy of an image, to resize one way while another copy is resized another way. */
export function copyOf(path: string, suffix: string): string {
  const p = `${path}.${suffix}`;
  copyFileSync(path, p);
  return p;
}
