/**
 * The fuzzing harness shared by the CI property tests and `npm run fuzz` campaigns: open bytes
 * as an image of a given driver, then use it as every command would (info, extents, reads). The
 * property: it either works or throws a GuestkitError — never a TypeError/RangeError, never a
 * hang, never an unbounded allocation (checked coarsely through arrayBuffers growth).
 */
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GuestkitError } from '../../src/errors.js';
import { rootContext } from '../../src/formats/open.js';
import type { FormatDriver, ImageReader } from '../../src/formats/types.js';
import { BufferSink } from '../../src/stream/sink.js';
import { BufferSource, type ByteSource } from '../../src/stream/source.js';
import { SparseBytes } from '../helpers/sparse-bytes.js';
import { copyImage } from '../../src/stream/copy.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { detectBytes } from '../../src/formats/detect.js';
import { realWorldBytes } from '../helpers/real-world.js';

export const CASE_TIME_LIMIT_MS = 5000;
/** Allocation allowed per case beyond the input itself (readers may hold tables and caches). */
export const ALLOCATION_ALLOWANCE = 96 * 1024 * 1024;

export interface Outcome {
  ok: boolean;
  error?: unknown;
}

async function useReader(r: ImageReader): Promise<void> {
  r.info();
  let n = 0;
  let lastEnd = 0;
  for await (const e of r.extents()) {
    if (e.offset !== lastEnd || e.length <= 0) throw new Error(`extents not contiguous at ${e.offset} (expected ${lastEnd})`);
    lastEnd = e.offset + e.length;
    if (++n > 2000) break;
  }
  const probes = [0, 512, 65536, Math.floor(r.virtualSize / 2), r.virtualSize - 4096].filter((o) => o >= 0 && o < r.virtualSize);
  for (const off of probes) {
    const len = Math.min(65536, r.virtualSize - off);
    const got = await r.read(off, len);
    if (got.length !== len) throw new Error(`short read: ${got.length} of ${len}`);
  }
}

/** Rejects with a "hang" error when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, rej) => (timer = setTimeout(() => rej(new Error(`hang: ${what} took over ${ms} ms`)), ms))),
  ]);
}

/** Opens and exercises `bytes` with `driver`; resolves with the outcome, rejects on a property violation. */
export async function exercise(driver: FormatDriver, bytes: Uint8Array): Promise<Outcome> {
  return exerciseSource(driver, new BufferSource(bytes, 'fuzz.img'), 4 * bytes.length);
}

/**
 * The same on any source (a huge sparse one: tables stated by hostile headers and backed by holes),
 * with `check` too where the driver has one. Allocation is allowed `extra` bytes beyond the allowance.
 */
export async function exerciseSource(driver: FormatDriver, source: ByteSource, extra = 0, withCheck = false): Promise<Outcome> {
  if (!driver.open) return { ok: true };
  const before = process.memoryUsage().arrayBuffers;
  let reader: ImageReader | undefined;
  const ctx = rootContext('fuzz.img', undefined, { openBacking: false });
  try {
    await withTimeout(
      (async () => {
        if (withCheck && driver.check) await driver.check(source, ctx).catch((e) => (e instanceof GuestkitError ? undefined : Promise.reject(e)));
        reader = await driver.open!(source, ctx);
        await useReader(reader);
      })(),
      CASE_TIME_LIMIT_MS,
      `${driver.name} open/read`,
    );
    return { ok: true };
  } catch (e) {
    if (e instanceof GuestkitError) return { ok: false, error: e };
    throw e;
  } finally {
    await reader?.close().catch(() => {});
    const grown = process.memoryUsage().arrayBuffers - before;
    if (grown > ALLOCATION_ALLOWANCE + extra) throw new Error(`allocated ${grown} bytes for a ${source.size}-byte input`);
  }
}

/**
 * Header fields that size or place a metadata table (little-endian unless `be`) in images from our
 * writers, with values that make the table huge: what a hostile header states to get a table
 * bounded only by the file's size.
 */
const LARGE = [0x10_0000, 0x100_0000, 0x800_0000, 0x1fff_ffff, 0x2000_0000, 0xffff_ffff];
export const TABLE_FIELDS: Record<string, Array<{ at: number; be?: boolean; values: number[] }>> = {
  // blocks_in_image, block size, disk size (high word), offBlocks.
  vdi: [{ at: 0x180, values: LARGE }, { at: 0x178, values: [512, 4096] }, { at: 0x174, values: [0, 1, 0x40, 0x1ff] }, { at: 0x154, values: [512, 0] }],
  // Dynamic header (at 512): block size, max_table_entries; footer current size (high word).
  vhd: [{ at: 512 + 32, be: true, values: [512, 4096] }, { at: 512 + 28, be: true, values: LARGE }, { at: 48, be: true, values: [0x10, 0x50, 0x1fe, 0x1ff] }],
  // Grain size (sectors), GTEs per GT, capacity (high word), redundant GD offset.
  vmdk: [{ at: 20, values: [1, 8] }, { at: 44, values: [512, 1, 513] }, { at: 16, values: [1, 0x10, 0x100, 0x800, 0x801] }, { at: 48, values: [0, 21] }],
};

/** VHD footer and dynamic header checksums made right again after a mutation, so that the tables are reached. */
export function resealVhd(bytes: Uint8Array): void {
  const seal = (from: number, len: number, at: number) => {
    if (bytes.length < from + len) return;
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    dv.setUint32(from + at, 0);
    let sum = 0;
    for (let i = from; i < from + len; i++) sum += bytes[i];
    dv.setUint32(from + at, ~sum >>> 0);
  };
  seal(0, 512, 64);
  seal(512, 1024, 36);
}

/** `head` at the start of a sparse source of `size` bytes (and, for VHD, its footer copy at the end). */
export function hugeSource(driver: string, head: Uint8Array, size: number): SparseBytes {
  const src = new SparseBytes(size, 'fuzz.img').write(0, head);
  if (driver === 'vhd') src.write(size - 512, head.subarray(0, 512));
  return src;
}

/** Bytes each format's parser needs to see before it parses anything further (arbitrary bytes go behind them). */
export const MAGIC: Record<string, Array<[number, number[]]>> = {
  qcow2: [[0, [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]]],
  vmdk: [[0, [...'KDMV'].map((c) => c.charCodeAt(0))]],
  vhd: [[0, [...'conectix'].map((c) => c.charCodeAt(0))]],
  vdi: [[0x40, [0x7f, 0x10, 0xda, 0xbe]]],
  vhdx: [[0, [...'vhdxfile'].map((c) => c.charCodeAt(0))]],
  raw: [],
};

/** `body` with the driver's magic written over it (lengthened to hold it). */
export function behindMagic(driver: string, body: Uint8Array): Uint8Array {
  const marks = MAGIC[driver] ?? [];
  const need = Math.max(body.length, ...marks.map(([at, m]) => at + m.length));
  const bytes = new Uint8Array(need);
  bytes.set(body);
  for (const [at, m] of marks) bytes.set(m, at);
  return bytes;
}

/** The layouts each writer can produce, so mutations reach every subformat's parser. */
export const SEED_VARIANTS: Record<string, Array<{ options?: Record<string, unknown>; compress?: boolean }>> = {
  qcow2: [{}, { options: { compat: '0.10' } }, { options: { cluster_size: '4k' } }, { options: { extended_l2: 'on' } }, { compress: true }],
  vmdk: [{}, { options: { subformat: 'streamOptimized' } }, { options: { zeroed_grain: 'on' } }],
  vhd: [{}, { options: { subformat: 'fixed' } }, { options: { block_size: '4k' } }],
  vdi: [{}, { options: { static: 'on' } }],
  vhdx: [{}, { options: { subformat: 'fixed' } }, { options: { block_size: '1M', logical_sector_size: 4096 } }, { options: { block_state_zero: 'off' } }],
  raw: [{}],
};

/** A valid image made by our own writer from random sparse content, when the driver can write. */
export async function seedImage(driver: FormatDriver, content: Uint8Array, variant = 0): Promise<Uint8Array | undefined> {
  if (!driver.create || !driver.capabilities.write) return undefined;
  const variants = SEED_VARIANTS[driver.name] ?? [{}];
  const { options = {}, compress } = variants[variant % variants.length];
  const sink = new BufferSink(`seed.${driver.extensions[0]}`);
  const reader = new RawReader(new BufferSource(content), content.length, undefined);
  const writer = await driver.create(sink, {
    virtualSize: content.length,
    options: driver.optionsSchema ? (driver.optionsSchema.parse(options) as Record<string, unknown>) : {},
    compress,
    file: sink.name,
    allocation: () => reader.extents(),
  });
  await copyImage(reader, writer);
  await writer.finish();
  return sink.bytes().slice();
}

export const sparseContent = fc
  .record({
    sectors: fc.integer({ min: 1, max: 4096 }),
    runs: fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 200_000 }), seed: fc.integer({ min: 1, max: 255 }) }), { maxLength: 5 }),
  })
  .map(({ sectors, runs }) => {
    const data = new Uint8Array(sectors * 512);
    for (const r of runs) {
      const at = r.at % data.length;
      const end = Math.min(data.length, at + r.len);
      for (let i = at; i < end; i++) data[i] = (i * r.seed) & 0xff;
    }
    return data;
  });

/** Mutations of a valid image: boundary values in the metadata, bit flips, truncation. */
export const mutation = fc.oneof(
  fc.record({
    kind: fc.constant('set32' as const),
    at: fc.nat(8191),
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x1ff, 0x200, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff),
    little: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(1 << 20), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

export type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

export function mutate(bytes: Uint8Array, muts: Mutation[]): Uint8Array {
  let out = bytes.slice();
  for (const m of muts) {
    if (m.kind === 'set32') {
      if (m.at + 4 <= out.length) new DataView(out.buffer, out.byteOffset).setUint32(m.at, m.value, m.little);
    } else if (m.kind === 'flip') {
      if (out.length) out[m.at % out.length] ^= 1 << m.bit;
    } else {
      out = out.slice(0, Math.floor(out.length * m.keep));
    }
  }
  return out;
}

/** Detection, then the detected driver: what every command does with a file it is given. */
export async function detectAndOpen(bytes: Uint8Array): Promise<Outcome> {
  const det = detectBytes({ head: bytes.subarray(0, 65536), tail: bytes.subarray(Math.max(0, bytes.length - 512)), size: bytes.length });
  return exercise(det.driver, bytes);
}

/** The real-world images committed in fixtures/real-world. */
export function realWorldSamples(): Uint8Array[] {
  return realWorldBytes();
}
