/** Shared pieces of the VMDK tests: patterned raw disks, whole-disk comparison, qemu-img map. */
import { closeSync, fstatSync, openSync, readSync, writeSync, ftruncateSync, readFileSync } from 'node:fs';
import { createCipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { toMapEntry } from '../../src/api/map.js';
import { openImage, openSource, type OpenOptions } from '../../src/formats/open.js';
import type { Extent, ImageReader } from '../../src/formats/types.js';
import { StreamSource } from '../../src/stream/source.js';
import { qemuMapEntries } from '../helpers/oracle.js';
import { pseudoRandom } from '../helpers/work.js';

/** Fast deterministic incompressible bytes (AES-128-CTR keystream of a fixed key), for large test disks. */
export function fastRandom(length: number, seed: number): Uint8Array {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x5a), iv).update(Buffer.alloc(length));
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** One region of a test disk: incompressible, compressible text, explicit zeros. */
export interface Region {
  at: number;
  length: number;
  kind: 'random' | 'text' | 'zeros';
  seed?: number;
}

const TEXT = Buffer.from('The quick brown fox jumps over the lazy dog; VMDK grains compress well. ');

export function regionBytes(r: Region): Uint8Array {
  if (r.kind === 'random') return pseudoRandom(r.length, r.seed ?? r.at + 1);
  const out = new Uint8Array(r.length);
  if (r.kind === 'text') for (let i = 0; i < r.length; i++) out[i] = TEXT[(i + (r.seed ?? 0)) % TEXT.length];
  return out;
}

/** A sparse raw file of `size` bytes holding `regions` (holes elsewhere). */
export function writeRaw(path: string, size: number, regions: Region[]): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const r of regions) writeSync(fd, regionBytes(r), 0, r.length, r.at);
  } finally {
    closeSync(fd);
  }
}

/**
 * A mix that exercises every path: a partial grain at the start, a run crossing grain and
 * grain-table boundaries, compressible text, written zeros (which stay unallocated), data in the
 * last grain of a size that is not a whole grain.
 */
export function mixedRegions(size: number): Region[] {
  const all: Region[] = [
    { at: 0, length: 4 * KiB, kind: 'random', seed: 7 },
    { at: 100 * KiB, length: 200 * KiB, kind: 'text', seed: 3 },
    { at: 1 * MiB + 512, length: 1500 * KiB, kind: 'random', seed: 11 },
    { at: 4 * MiB, length: 1 * MiB, kind: 'zeros' },
    { at: 32 * MiB - 64 * KiB, length: 192 * KiB, kind: 'random', seed: 13 },
    { at: size - 5 * KiB, length: 5 * KiB, kind: 'text', seed: 5 },
  ];
  return all.filter((r) => r.at + r.length <= size);
}

/** Reads the whole virtual disk in chunks and compares it with a raw file, byte for byte. */
export async function expectSameAsRaw(reader: ImageReader, rawPath: string): Promise<void> {
  const fd = openSync(rawPath, 'r');
  try {
    const chunk = 4 * MiB;
    const ours = new Uint8Array(chunk);
    const theirs = new Uint8Array(chunk);
    expect(fstatSync(fd).size, 'virtual size').toBe(reader.virtualSize);
    for (let off = 0; off < reader.virtualSize; off += chunk) {
      const n = Math.min(chunk, reader.virtualSize - off);
      await reader.read(off, n, ours);
      const got = readSync(fd, theirs, 0, n, off);
      expect(got, `raw file shorter than the disk at ${off}`).toBe(n);
      const a = Buffer.from(ours.buffer, 0, n);
      const b = Buffer.from(theirs.buffer, 0, n);
      if (!a.equals(b)) {
        let i = 0;
        while (a[i] === b[i]) i++;
        expect.fail(`first difference at byte ${off + i}: ours ${a[i]}, qemu-img ${b[i]}`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

export interface Run {
  start: number;
  length: number;
  kind: Extent['kind'];
  depth: number;
}

function merge(runs: Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.kind === r.kind && last.depth === r.depth && last.start + last.length === r.start) last.length += r.length;
    else out.push({ ...r });
  }
  return out;
}

/** qemu-img map as runs of data / zero / unallocated, the vocabulary of our extents(). */
export function qemuMap(path: string, format = 'vmdk'): Run[] {
  const entries = qemuMapEntries(path, format);
  return merge(
    entries.map((e) => ({
      start: e.start,
      length: e.length,
      depth: e.depth,
      kind: e.data ? 'data' : e.present ? 'zero' : 'unallocated',
    })),
  );
}

export async function ourMap(reader: ImageReader): Promise<Run[]> {
  const runs: Run[] = [];
  // In qemu-img map's vocabulary, as qemuMap gives it: a zero run not present is 'unallocated'.
  for await (const e of reader.extents()) {
    const m = toMapEntry(e);
    runs.push({ start: e.offset, length: e.length, kind: m.data ? 'data' : m.present ? 'zero' : 'unallocated', depth: e.depth });
  }
  return merge(runs);
}

export function openVmdk(path: string, opts: OpenOptions = {}): Promise<ImageReader> {
  return openImage(path, { format: 'vmdk', ...opts });
}

/** Opens a file as if it came down a pipe, in chunks of `chunk` bytes (hostile split points). */
export function openAsPipe(path: string, chunk = 64 * KiB): Promise<ImageReader> {
  const bytes = readFileSync(path);
  async function* pieces() {
    for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
  }
  return openSource(new StreamSource(Readable.from(pieces(), { objectMode: false }), 'pipe'), { format: 'vmdk' });
}

/** Reads a whole (small) image into memory. */
export async function readAll(reader: ImageReader): Promise<Uint8Array> {
  return reader.read(0, reader.virtualSize);
}
