/**
 * Properties (fast-check, fixed seed): anything we write reads back exactly and checks clean,
 * whatever the options, the content and the way the input is split; and mutated images — header,
 * extensions, tables — never make open, info, extents, read or check throw anything but a
 * GuestkitError, nor hang.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import { GuestkitError } from '../../src/errors.js';
import { rootContext } from '../../src/formats/open.js';
import { qcow2Driver } from '../../src/formats/qcow2/driver.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import type { ImageReader } from '../../src/formats/types.js';
import { copyImage } from '../../src/stream/copy.js';
import { BufferSink, StreamSink } from '../../src/stream/sink.js';
import { BufferSource } from '../../src/stream/source.js';

const SEED = 3_0302_2026;
const ctx = (name: string) => rootContext(name, undefined, { openBacking: false });

const content = fc
  .record({
    size: fc.integer({ min: 1, max: 1536 }).map((k) => k * 512 + 0),
    runs: fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 150_000 }), kind: fc.constantFrom('text', 'noise', 'fill') }), { maxLength: 6 }),
  })
  .map(({ size, runs }) => {
    const data = new Uint8Array(size);
    for (const [i, r] of runs.entries()) {
      const at = r.at % size;
      const end = Math.min(size, at + r.len);
      for (let p = at, x = i + 1; p < end; p++) {
        if (r.kind === 'fill') data[p] = 0x40 + i;
        else if (r.kind === 'text') data[p] = 0x61 + ((p >> 3) % 7);
        else {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          data[p] = x & 0xff;
        }
      }
    }
    return data;
  });

const options = fc
  .record({
    cluster: fc.constantFrom(512, 4096, 65536),
    compat: fc.constantFrom('0.10', '1.1'),
    refcountBits: fc.constantFrom(1, 8, 16, 64),
    extendedL2: fc.boolean(),
    lazy: fc.boolean(),
  })
  .map((o) => {
    const out: Record<string, unknown> = { cluster_size: o.cluster, compat: o.compat };
    if (o.compat === '1.1') {
      out.refcount_bits = o.refcountBits;
      if (o.extendedL2 && o.cluster >= 16384) out.extended_l2 = true;
      if (o.lazy) out.lazy_refcounts = true;
    }
    return out;
  });

async function write(data: Uint8Array, opts: Record<string, unknown>, compress: boolean, chunk: number, pipe: boolean): Promise<Uint8Array> {
  const reader = new RawReader(new BufferSource(data), data.length, undefined);
  const spec = { virtualSize: data.length, options: qcow2Driver.optionsSchema!.parse(opts), compress, parallelism: 3, file: 'p.qcow2', allocation: () => reader.extents() };
  if (!pipe) {
    const sink = new BufferSink('p.qcow2');
    const w = await qcow2Driver.create!(sink, spec);
    await copyImage(reader, w, { chunkSize: chunk });
    await w.finish();
    return sink.bytes().slice();
  }
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  const sink = new StreamSink(pass, 'pipe');
  const w = await qcow2Driver.create!(sink, spec);
  await copyImage(reader, w, { chunkSize: chunk });
  await w.finish();
  await sink.close();
  return new Uint8Array(Buffer.concat(chunks));
}

async function readBack(image: Uint8Array): Promise<Uint8Array> {
  const r = await qcow2Driver.open!(new BufferSource(image, 'p.qcow2'), ctx('p.qcow2'));
  try {
    return r.read(0, r.virtualSize);
  } finally {
    await r.close();
  }
}

async function checkClean(image: Uint8Array): Promise<void> {
  const res = await qcow2Driver.check!(new BufferSource(image, 'p.qcow2'), ctx('p.qcow2'));
  expect([res.corruptions, res.leaks, res.checkErrors, res.messages]).toEqual([0, 0, 0, []]);
}

describe('qcow2 round trips', () => {
  it('whatever the options, content and chunking: reads back exactly and checks clean (file and pipe)', async () => {
    await fc.assert(
      fc.asyncProperty(content, options, fc.boolean(), fc.constantFrom(65536, 131072, 2 * 1024 * 1024), async (data, opts, compress, chunk) => {
        const pipe = !compress && chunk === 131072;
        const image = await write(data, opts, compress, chunk, pipe);
        const back = await readBack(image);
        expect(back.length).toBe(data.length);
        expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
        await checkClean(image);
      }),
      { numRuns: 60, seed: SEED },
    );
  });

  it('compressed clusters read in any pieces (groups fetched in one read, clusters split between reads) give the content back', async () => {
    await fc.assert(
      fc.asyncProperty(content, fc.constantFrom(512, 4096, 65536), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 8 }), async (data, cluster, cuts) => {
        const image = await write(data, { cluster_size: cluster }, true, 65536, false);
        const r = await qcow2Driver.open!(new BufferSource(image, 'p.qcow2'), ctx('p.qcow2'));
        try {
          for (const [a, b] of cuts) {
            const from = a % data.length;
            const len = 1 + (b % (data.length - from));
            const got = await r.read(from, len);
            expect(Buffer.compare(Buffer.from(got), Buffer.from(data.subarray(from, from + len)))).toBe(0);
          }
        } finally {
          await r.close();
        }
      }),
      { numRuns: 60, seed: SEED },
    );
  });

  it('writes that do not cover whole clusters are assembled (any split of the input)', async () => {
    await fc.assert(
      fc.asyncProperty(content, fc.array(fc.nat(), { maxLength: 12 }), fc.constantFrom(512, 4096, 65536), async (data, cuts, cluster) => {
        const sink = new BufferSink('s.qcow2');
        const w = await qcow2Driver.create!(sink, { virtualSize: data.length, options: { cluster_size: cluster }, file: 's.qcow2' });
        const points = [...new Set([0, data.length, ...cuts.map((c) => c % data.length)])].sort((a, b) => a - b);
        for (let i = 0; i + 1 < points.length; i++) {
          const piece = data.subarray(points[i], points[i + 1]);
          if (piece.every((b) => b === 0) && i % 2) await w.writeZeroes(points[i], piece.length);
          else await w.write(points[i], piece);
        }
        await w.finish();
        const image = sink.bytes().slice();
        expect(Buffer.compare(Buffer.from(await readBack(image)), Buffer.from(data))).toBe(0);
        await checkClean(image);
      }),
      { numRuns: 40, seed: SEED },
    );
  });
});

/** Uses a reader the way commands do; only GuestkitError may escape. */
async function exercise(image: Uint8Array): Promise<void> {
  let reader: ImageReader | undefined;
  const guarded = async (f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      if (!(e instanceof GuestkitError)) throw e;
    }
  };
  await guarded(async () => {
    reader = await qcow2Driver.open!(new BufferSource(image, 'm.qcow2'), ctx('m.qcow2'));
    reader.info();
    let n = 0;
    for await (const e of reader.extents()) if (++n > 500 || e.length <= 0) break;
    for (const off of [0, 4096, Math.floor(reader.virtualSize / 2)]) {
      if (off < reader.virtualSize) await reader.read(off, Math.min(65536, reader.virtualSize - off));
    }
  });
  await reader?.close();
  await guarded(() => qcow2Driver.check!(new BufferSource(image, 'm.qcow2'), ctx('m.qcow2')));
}

describe('qcow2 mutated images', () => {
  it('mutated headers, extensions and tables never escape as anything but a GuestkitError', async () => {
    // A seed with everything in it: v3, backing name and format, compressed clusters, refcounts.
    const data = new Uint8Array(1024 * 1024);
    for (let i = 0; i < data.length; i += 1 + (i % 7)) data[i] = (i * 31) & 0xff;
    data.fill(0, 300_000, 700_000);
    const seeds = [
      await write(data, { cluster_size: 4096 }, true, 65536, false),
      await write(data, { cluster_size: 65536, extended_l2: true, refcount_bits: 64 }, false, 65536, false),
      await write(data, { compat: '0.10', cluster_size: 512 }, false, 65536, false),
      await write(data, { cluster_size: 512, refcount_bits: 1 }, true, 65536, false),
    ];
    const sink = new BufferSink('o.qcow2');
    const w = await qcow2Driver.create!(sink, { virtualSize: 1 << 20, options: { backing_file: 'b.qcow2', backing_fmt: 'qcow2' }, file: 'o.qcow2' });
    await w.finish();
    seeds.push(sink.bytes().slice());
    const mutation = fc.oneof(
      // Header and extensions: the first 1 KiB, where every field is.
      fc.record({ at: fc.nat(1023), value: fc.constantFrom(0, 1, 0xff, 0x80, 0x7f, 0x10, 0x40) }),
      // Anywhere: tables, refcounts, payloads.
      fc.record({ at: fc.nat(), value: fc.nat(255) }),
      // One byte of an entry of the L1 table, the refcount table or the first refcount block.
      fc.record({ table: fc.nat(2), entry: fc.nat(63), byte: fc.nat(7), value: fc.constantFrom(0x80, 0xff, 0x40, 0x01, 0x3f, 0x00) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(seeds.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.option(fc.double({ min: 0, max: 1, noNaN: true })), async (s, muts, cut) => {
        let image = seeds[s].slice();
        const dv = new DataView(image.buffer);
        const tables = [Number(dv.getBigUint64(40)), Number(dv.getBigUint64(48))];
        tables.push(Number(dv.getBigUint64(tables[1]) & 0x00fffffffffffe00n));
        for (const m of muts) {
          const at = 'table' in m ? tables[m.table] + m.entry * 8 + m.byte : m.at;
          image[at % image.length] = m.value;
        }
        if (cut !== null) image = image.slice(0, Math.floor(image.length * cut));
        const t0 = performance.now();
        await exercise(image);
        expect(performance.now() - t0).toBeLessThan(5000);
      }),
      { numRuns: 800, seed: SEED },
    );
  });
});

describe('qcow2 check stays bounded', () => {
  it('65,536 snapshots all naming the same tables: check stops at its work limit in seconds, reading still works', async () => {
    const data = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = 1;
    const image = await write(data, {}, false, 65536, false);
    const dv0 = new DataView(image.buffer);
    const l1 = dv0.getBigUint64(40);
    // Append a snapshot table whose 65,536 entries all point at the active L1 table.
    const entry = 56; // 40-byte header + 16 bytes of extra data (the v3 minimum)
    const tableAt = Math.ceil(image.length / 65536) * 65536;
    const grown = new Uint8Array(tableAt + 65536 * entry);
    grown.set(image);
    const dv = new DataView(grown.buffer);
    for (let i = 0; i < 65536; i++) {
      const at = tableAt + i * entry;
      dv.setBigUint64(at, l1);
      dv.setUint32(at + 8, 1);
      dv.setUint32(at + 36, 16);
    }
    dv.setUint32(60, 65536);
    dv.setBigUint64(64, BigInt(tableAt));
    const t0 = performance.now();
    const res = await qcow2Driver.check!(new BufferSource(grown, 's.qcow2'), ctx('s.qcow2'));
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(res.checkErrors).toBe(1);
    expect(res.messages.at(-1)).toMatch(/check stopped/);
    const r = await qcow2Driver.open!(new BufferSource(grown, 's.qcow2'), ctx('s.qcow2'));
    expect(r.info().snapshots).toHaveLength(65536);
    expect(Buffer.compare(Buffer.from(await r.read(0, data.length)), Buffer.from(data))).toBe(0);
    await r.close();
  });
});
