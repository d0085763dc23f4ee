/**
 * Properties (fast-check): random sparse content written by every subformat reads back exactly,
 * from a file and — for streamOptimized — from a pipe split at random places; all-zero grains stay
 * unallocated. Mutated headers, descriptors, tables and markers only ever throw GuestkitError.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { GuestkitError } from '../../src/errors.js';
import { openImage, rootContext } from '../../src/formats/open.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import type { ImageReader } from '../../src/formats/types.js';
import { vmdkDriver } from '../../src/formats/vmdk/driver.js';
import { copyImage } from '../../src/stream/copy.js';
import { BufferSink, FileSink } from '../../src/stream/sink.js';
import { BufferSource, StreamSource } from '../../src/stream/source.js';

const SEED = Number(process.env.GUESTKIT_FUZZ_SEED ?? 20261126);
/** CI runs a modest count; `GUESTKIT_FUZZ_RUNS=20000` runs a campaign. */
const RUNS = Number(process.env.GUESTKIT_FUZZ_RUNS ?? 400);
const GRAIN = 64 * 1024;

/** Disks up to 3 MiB with runs of patterned data, some grain-aligned, some not. */
const content = fc
  .record({
    sectors: fc.integer({ min: 1, max: 6144 }),
    runs: fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 300_000 }), seed: fc.integer({ min: 1, max: 255 }), aligned: fc.boolean() }), { maxLength: 6 }),
  })
  .map(({ sectors, runs }) => {
    const data = new Uint8Array(sectors * 512);
    for (const r of runs) {
      const at = (r.aligned ? r.at - (r.at % GRAIN) : r.at) % data.length;
      const end = Math.min(data.length, at + r.len);
      for (let i = at; i < end; i++) data[i] = (i * r.seed + (i >> 9)) & 0xff;
    }
    return data;
  });

async function write(content: Uint8Array, options: Record<string, unknown>, dir?: string, parallelism?: number): Promise<{ bytes?: Uint8Array; path?: string }> {
  const reader = new RawReader(new BufferSource(content), content.length, undefined);
  const path = dir ? join(dir, 'd.vmdk') : undefined;
  const sink = path ? await FileSink.open(path, 'w') : new BufferSink('p.vmdk');
  const sides: FileSink[] = [];
  const writer = await vmdkDriver.create!(sink, {
    virtualSize: content.length,
    options,
    file: path ?? 'p.vmdk',
    path,
    parallelism,
    allocation: () => reader.extents(),
    openSideFile: async (p) => {
      const s = await FileSink.open(p, 'w');
      sides.push(s);
      return s;
    },
  });
  await copyImage(reader, writer);
  await writer.finish();
  for (const s of [sink, ...sides]) await s.close();
  return sink instanceof BufferSink ? { bytes: sink.bytes().slice() } : { path };
}

function pipeOf(bytes: Uint8Array, cuts: number[]): StreamSource {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  async function* pieces() {
    let at = 0;
    for (const p of [...points, bytes.length]) {
      if (p > at) yield Buffer.from(bytes.subarray(at, p));
      at = Math.max(at, p);
    }
  }
  return new StreamSource(Readable.from(pieces()), 'pipe');
}

async function expectContent(r: ImageReader, want: Uint8Array): Promise<void> {
  expect(r.virtualSize).toBe(want.length);
  const got = await r.read(0, r.virtualSize);
  expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
}

/** All-zero grains of the content must not be data in the image. */
async function expectZeroGrainsUnallocated(r: ImageReader, want: Uint8Array): Promise<void> {
  for await (const e of r.extents()) {
    if (e.kind !== 'data') continue;
    for (let g = Math.floor(e.offset / GRAIN) * GRAIN; g < e.offset + e.length; g += GRAIN) {
      expect(want.subarray(g, g + GRAIN).some((b) => b !== 0), `grain at ${g} is all zeros but stored`).toBe(true);
    }
  }
}

describe('round trip of random sparse content', () => {
  it('monolithicSparse and streamOptimized (from the file and from a pipe cut anywhere)', async () => {
    await fc.assert(
      fc.asyncProperty(content, fc.array(fc.nat(), { maxLength: 6 }), fc.integer({ min: 1, max: 6 }), async (data, cuts, jobs) => {
        for (const subformat of ['monolithicSparse', 'streamOptimized']) {
          const { bytes } = await write(data, { subformat }, undefined, jobs);
          const r = await vmdkDriver.open!(new BufferSource(bytes!, 'x.vmdk'), rootContext('x.vmdk', undefined, {}));
          try {
            await expectContent(r, data);
            await expectZeroGrainsUnallocated(r, data);
          } finally {
            await r.close();
          }
          if (subformat === 'streamOptimized') {
            const p = await vmdkDriver.open!(pipeOf(bytes!, cuts), rootContext('pipe', undefined, {}));
            try {
              await expectContent(p, data);
            } finally {
              await p.close();
            }
          }
        }
      }),
      { numRuns: 25, seed: SEED },
    );
  });

  it('monolithicFlat and the split subformats', async () => {
    await fc.assert(
      fc.asyncProperty(content, fc.constantFrom('monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'), async (data, subformat) => {
        const dir = mkdtempSync(join(tmpdir(), 'guestkit-vmdk-prop-'));
        try {
          const { path } = await write(data, { subformat }, dir);
          const r = await openImage(path!);
          try {
            await expectContent(r, data);
            if (subformat === 'twoGbMaxExtentSparse') await expectZeroGrainsUnallocated(r, data);
          } finally {
            await r.close();
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 15, seed: SEED },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Mutations

const BOUNDARY = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x1ff, 0x200, 0xffff, 0x10000, 0x30000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Where VMDK metadata lives in an image: header, descriptor, tables, the first marker, the footer. */
function hotSpots(bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const spots = [4, 8, 12, 16, 20, 24, 28, 36, 44, 48, 52, 56, 60, 64, 72, 76];
  if (bytes.length >= 1024) for (let i = 512; i < 1024; i += 37) spots.push(i);
  if (bytes.length >= 80) {
    const sector = (off: number) => Number(dv.getBigUint64(off, true) & 0xffffffffn) * 512;
    for (const at of [sector(48), sector(56), sector(64)]) for (let i = 0; i < 64; i += 4) spots.push(at + i);
  }
  for (let i = 1; i <= 3; i++) for (let j = 0; j < 80; j += 4) spots.push(bytes.length - i * 512 + j);
  return spots.filter((s) => s >= 0 && s + 4 <= bytes.length);
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), spot: fc.nat(), value: fc.constantFrom(...BOUNDARY) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('text' as const), at: fc.integer({ min: 512, max: 1400 }), text: fc.constantFrom('"', '\n', '=', 'RW 99999999999 FLAT "/etc/passwd" 0\n', 'CID=zz\n', '\0', 'createType="vmfs"\n', 'parentFileNameHint="../x"\n') }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(src: Uint8Array, muts: Mutation[]): Uint8Array {
  let out = src.slice();
  for (const m of muts) {
    const spots = hotSpots(out);
    if (m.kind === 'set' && spots.length) new DataView(out.buffer).setUint32(spots[m.spot % spots.length], m.value, true);
    else if (m.kind === 'flip' && out.length) out[m.at % out.length] ^= 1 << m.bit;
    else if (m.kind === 'text' && m.at + m.text.length <= out.length) out.set(Buffer.from(m.text, 'latin1'), m.at);
    else if (m.kind === 'truncate') out = out.slice(0, Math.floor(out.length * m.keep));
  }
  return out;
}

/** Uses an image as the commands would; returns normally or throws what the reader threw. */
async function exercise(r: ImageReader): Promise<void> {
  r.info();
  let n = 0;
  for await (const e of r.extents()) {
    expect(e.length).toBeGreaterThan(0);
    if (++n > 500) break;
  }
  for (const off of [0, 65536, Math.floor(r.virtualSize / 2), r.virtualSize - 4096]) {
    if (off < 0 || off >= r.virtualSize) continue;
    await r.read(off, Math.min(65536, r.virtualSize - off));
  }
}

async function onlyGuestkitErrors(open: () => Promise<ImageReader>, readAfter: (r: ImageReader) => Promise<void>): Promise<void> {
  let r: ImageReader | undefined;
  try {
    r = await open();
    await readAfter(r);
  } catch (e) {
    if (!(e instanceof GuestkitError)) throw e;
  } finally {
    await r?.close().catch(() => {});
  }
}

describe('mutated images only ever throw GuestkitError', () => {
  const seeds: Promise<Uint8Array[]> = (async () => {
    const data = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < 200_000; i++) data[i] = i & 0xff;
    data.fill(7, 2_100_000, 2_300_000);
    const sparse = (await write(data, { subformat: 'monolithicSparse', zeroed_grain: 'on' })).bytes!;
    const stream = (await write(data, { subformat: 'streamOptimized' })).bytes!;
    const samples = ['ext2-fs.vmdk', 'esxi-ovftool-streamoptimized.vmdk', 'ovftool-streamoptimized-10g.vmdk'].map((n) => new Uint8Array(readFileSync(realWorld(n))));
    return [sparse, stream, ...samples];
  })();

  it('from a file', async () => {
    const all = await seeds;
    await fc.assert(
      fc.asyncProperty(fc.nat(all.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (i, muts) => {
        const bytes = mutate(all[i], muts);
        await onlyGuestkitErrors(() => vmdkDriver.open!(new BufferSource(bytes, 'm.vmdk'), rootContext('m.vmdk', undefined, { openBacking: false })), exercise);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('from a pipe', async () => {
    const all = await seeds;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1, 2, 3), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 4 }), async (i, muts, cuts) => {
        const bytes = mutate(all[i], muts);
        await onlyGuestkitErrors(
          () => vmdkDriver.open!(pipeOf(bytes, cuts), rootContext('pipe', undefined, { openBacking: false })),
          async (r) => {
            r.info();
            let n = 0;
            for await (const e of r.extents()) {
              // Forward-only: read each data run as the copy engine would, in order.
              if (e.kind === 'data') await r.read(e.offset, Math.min(e.length, 65536));
              if (++n > 50) break;
            }
          },
        );
      }),
      { numRuns: Math.ceil(RUNS / 2), seed: SEED },
    );
  });
});
