/** Shared pieces of the qcow2 tests: reading through our reader, qemu-img's views, image makers. */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { openImage, rootContext, type OpenOptions } from '../../src/formats/open.js';
import { qcow2Driver } from '../../src/formats/qcow2/driver.js';
import type { CheckResult, Extent } from '../../src/formats/types.js';
import { FileSource } from '../../src/stream/source.js';
import { qemuImg, qemuIo, qemuMapEntries, qemuToRaw } from '../helpers/oracle.js';
import { toMapEntry, type MapEntry } from '../../src/api/map.js';
import { pseudoRandom, readImage } from '../helpers/work.js';

export const readAll = readImage;

export async function ourExtents(path: string, opts: OpenOptions = {}): Promise<Extent[]> {
  const r = await openImage(path, opts);
  try {
    const out: Extent[] = [];
    for await (const e of r.extents()) out.push(e);
    return out;
  } finally {
    await r.close();
  }
}

export interface Run {
  offset: number;
  length: number;
  kind: Extent['kind'];
  depth: number;
}

/**
 * Merges adjacent runs of the same kind and depth (qemu-img also splits at host-offset jumps), in
 * qemu-img map's vocabulary: a zero run that is not present (a hole with nothing beneath) is
 * 'unallocated' here, as qemuRuns names it.
 */
export function mergeRuns(runs: Array<Run & { present?: boolean }>): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const m = toMapEntry({ ...r, present: r.present });
    const kind: Run['kind'] = m.data ? 'data' : m.present ? 'zero' : 'unallocated';
    const last = out[out.length - 1];
    if (last && last.kind === kind && last.depth === r.depth && last.offset + last.length === r.offset) last.length += r.length;
    else out.push({ offset: r.offset, length: r.length, kind, depth: r.depth });
  }
  return out;
}

export function qemuMap(path: string): MapEntry[] {
  return qemuMapEntries(path);
}

/** qemu-img map as runs: data → data; present zero → zero; not present → unallocated. */
export function qemuRuns(path: string): Run[] {
  return mergeRuns(
    qemuMap(path).map((e) => ({ offset: e.start, length: e.length, depth: e.depth, kind: e.data ? 'data' : e.present ? 'zero' : 'unallocated' })),
  );
}

/** Every qemu data range at depth 0 with a host offset is data at the same host offsets for us. */
export function checkHostOffsets(path: string, ours: Extent[]): string[] {
  const problems: string[] = [];
  for (const q of qemuMap(path)) {
    if (!q.data || q.depth !== 0 || q.offset === undefined) continue;
    for (const e of ours) {
      const from = Math.max(e.offset, q.start);
      const to = Math.min(e.offset + e.length, q.start + q.length);
      if (from >= to) continue;
      if (e.kind !== 'data' || e.hostOffset === undefined || e.hostOffset + (from - e.offset) !== q.offset + (from - q.start)) {
        problems.push(`range ${from}+${to - from}: qemu offset ${q.offset + (from - q.start)}, ours ${JSON.stringify(e)}`);
      }
    }
  }
  return problems;
}

let scratchCount = 0;
/** A fresh file name in the OS temp folder (never beside an image: real-world samples are shared by every test). */
function scratchFile(suffix: string): string {
  return join(tmpdir(), `guestkit-qcow2-oracle-${process.pid}-${scratchCount++}${suffix}`);
}

/** Reads a scratch file and removes it. */
function take(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } finally {
    rmSync(path, { force: true });
  }
}

export function qemuInfo(path: string): Record<string, any> {
  // Through a file: the crafted sample's 65,536 snapshots make megabytes of JSON.
  // In a scratch folder, never beside the image: real-world samples are shared by every test.
  const outFile = scratchFile('.info.json');
  execFileSync('sh', ['-c', 'exec qemu-img info --output=json "$1" >"$2"', 'sh', path, outFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  return JSON.parse(take(outFile));
}

/** qemu-img check as JSON plus its message lines (ERROR…, Leaked…, printed on stderr in every output mode). */
export function qemuCheck(path: string): { status: number; json: Record<string, number>; lines: string[] } {
  // One run, stderr to a file: the crafted sample prints 65,543 lines, slow through a pipe.
  const errFile = scratchFile('.check-stderr');
  const r = spawnSync('sh', ['-c', 'exec qemu-img check --output=json "$1" 2>"$2"', 'sh', path, errFile], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const lines = take(errFile)
    .split('\n')
    .filter((l) => /^(ERROR|Leaked|Can't get|Use qemu-img amend)/.test(l));
  return { status: r.status ?? -1, json: JSON.parse(r.stdout), lines };
}

export async function ourCheck(path: string): Promise<CheckResult> {
  const s = await FileSource.open(path);
  try {
    return await qcow2Driver.check!(s, rootContext(path, path, {}));
  } finally {
    await s.close();
  }
}

/** qemu-img compare of two images (formats probed); true when identical. */
export function qemuCompare(a: string, b: string): { same: boolean; text: string } {
  const r = spawnSync('qemu-img', ['compare', a, b], { encoding: 'utf8' });
  return { same: r.status === 0, text: r.stdout + r.stderr };
}

/** Converts with guestkit's library API. */
export async function ourConvert(src: string, out: string, opts: { options?: string; compress?: boolean; parallelism?: number; format?: string } = {}) {
  return convert({ source: src, output: out, format: opts.format ?? 'qcow2', options: opts.options, compress: opts.compress, parallelism: opts.parallelism, force: true, durable: false });
}

/**
 * The source disk most tests convert: 8 MiB with pseudo-random data, compressible text, a
 * repeated pattern and holes, so compression, zero detection and sparse runs all matter.
 */
export const SOURCE_SIZE = 8 * 1024 * 1024;
export function makeSourceRaw(dir: string): string {
  const data = new Uint8Array(SOURCE_SIZE);
  data.set(pseudoRandom(1024 * 1024, 7), 0);
  const text = Buffer.from(
    Array.from({ length: 12000 }, (_, i) => `line ${i}: the quick brown fox ${i % 97} jumps over the lazy dog ${(i * 7919) % 1000}\n`).join(''),
  );
  data.set(text.subarray(0, 768 * 1024), 2 * 1024 * 1024);
  data.fill(0x5a, 5 * 1024 * 1024, 5 * 1024 * 1024 + 64 * 1024);
  data.set(pseudoRandom(4096, 9), 7 * 1024 * 1024 + 12345);
  const path = join(dir, 'source.raw');
  writeFileSync(path, data);
  return path;
}

/** qemu-img convert from raw with -o options (and -c), then qemu-io commands on the result. */
export function qemuImage(dir: string, name: string, source: string, o: string, io: string[] = [], compress = false): string {
  const path = join(dir, name);
  qemuImg('convert', '-f', 'raw', '-O', 'qcow2', ...(compress ? ['-c'] : []), ...(o ? ['-o', o] : []), source, path);
  if (io.length) qemuIo('qcow2', path, ...io);
  return path;
}

/** `qemu-img convert -O raw`, read back. */
export function qemuRaw(dir: string, image: string): Buffer {
  const out = join(dir, `ref-${Math.random().toString(36).slice(2)}.raw`);
  qemuToRaw(image, out);
  return readFileSync(out);
}

export function qemuImgRun(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}
