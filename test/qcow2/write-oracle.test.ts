/**
 * The writer against qemu-img: every image we write passes `qemu-img check` with no errors and no
 * leaks and compares identical with its source; options show up in `qemu-img info`; -c output is
 * no larger than qemu-img's; pipes get a valid image in one pass; a 1 TiB sparse disk converts
 * in seconds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { guestkitBinary } from '../helpers/cli.js';
import { openImage } from '../../src/formats/open.js';
import { qcow2Driver } from '../../src/formats/qcow2/driver.js';
import { copyImage } from '../../src/stream/copy.js';
import { StreamSink, FileSink } from '../../src/stream/sink.js';
import { makeSourceRaw, ourCheck, ourConvert, ourExtents, qemuCheck, qemuCompare, qemuInfo, readAll } from './helpers.js';
import { VARIANTS } from './matrix.js';

/** qemu-img check: clean, and our own check agrees on the end offset. */
async function expectClean(path: string): Promise<void> {
  const q = qemuCheck(path);
  expect(q.lines).toEqual([]);
  expect(q.status).toBe(0);
  expect(q.json.corruptions ?? 0).toBe(0);
  expect(q.json.leaks ?? 0).toBe(0);
  const ours = await ourCheck(path);
  expect([ours.corruptions, ours.leaks, ours.checkErrors, ours.messages]).toEqual([0, 0, 0, []]);
  expect(ours.imageEndOffset).toBe(q.json['image-end-offset']);
}

async function toPipe(src: string, options: Record<string, unknown> = {}): Promise<Buffer> {
  const reader = await openImage(src);
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  const sink = new StreamSink(pass, 'pipe');
  const options0 = qcow2Driver.optionsSchema!.parse(options);
  const w = await qcow2Driver.create!(sink, { virtualSize: reader.virtualSize, options: options0, file: 'pipe', allocation: () => reader.extents() });
  await copyImage(reader, w);
  await w.finish();
  await reader.close();
  await sink.close();
  return Buffer.concat(chunks);
}

const WRITE_OPTIONS: Array<{ o: string; info: Record<string, unknown> }> = [
  { o: '', info: { compat: '1.1', 'cluster-size': 65536, 'refcount-bits': 16, 'lazy-refcounts': false, 'extended-l2': false } },
  { o: 'compat=0.10', info: { compat: '0.10', 'refcount-bits': 16 } },
  { o: 'compat=0.10,cluster_size=4k', info: { compat: '0.10', 'cluster-size': 4096 } },
  { o: 'cluster_size=512', info: { 'cluster-size': 512 } },
  { o: 'cluster_size=4k', info: { 'cluster-size': 4096 } },
  { o: 'cluster_size=2M', info: { 'cluster-size': 2 * 1024 * 1024 } },
  { o: 'extended_l2=on', info: { 'extended-l2': true } },
  { o: 'extended_l2=on,cluster_size=16k', info: { 'extended-l2': true, 'cluster-size': 16384 } },
  { o: 'refcount_bits=1', info: { 'refcount-bits': 1 } },
  { o: 'refcount_bits=64', info: { 'refcount-bits': 64 } },
  { o: 'lazy_refcounts=on', info: { 'lazy-refcounts': true } },
  { o: 'compression_type=zstd', info: { 'compression-type': 'zstd' } },
];

describeOracle('qcow2 writer against qemu-img', () => {
  const dir = workDir('qcow2-write');
  let source: string;
  const images = new Map<string, string>();
  beforeAll(() => {
    source = makeSourceRaw(dir);
    for (const v of VARIANTS) images.set(v.name, v.make(dir, source));
  });

  describe('from raw, with each option', () => {
    for (const { o, info } of WRITE_OPTIONS) {
      it(`-o ${o || '(defaults)'}: clean check, identical content, options in qemu-img info`, async () => {
        const out = join(dir, `raw-${o.replace(/[=,]/g, '_') || 'default'}.qcow2`);
        await ourConvert(source, out, { options: o });
        await expectClean(out);
        expect(qemuCompare(source, out).same).toBe(true);
        const q = qemuInfo(out);
        for (const [k, v] of Object.entries(info)) expect([k, k === 'cluster-size' ? q[k] : q['format-specific'].data[k]]).toEqual([k, v]);
        expect(Buffer.compare(await readAll(out), readFileSync(source))).toBe(0);
      });
    }
  });

  describe('from each image of the matrix (chains flattened)', () => {
    for (const v of VARIANTS) {
      it(`${v.name}: clean check and identical content`, async () => {
        const src = images.get(v.name)!;
        const out = join(dir, `from-${v.name.replace(/[^a-z0-9]+/gi, '_')}.qcow2`);
        await ourConvert(src, out);
        await expectClean(out);
        const cmp = qemuCompare(src, out);
        expect(cmp.text).toMatch(/Images are identical/);
        // Holes stay holes: output data lies only in 64 KiB clusters that hold source data.
        const cs = 65536;
        const touched = new Set<number>();
        for (const e of await ourExtents(src)) {
          if (e.kind !== 'data') continue;
          for (let c = Math.floor(e.offset / cs); c < Math.ceil((e.offset + e.length) / cs); c++) touched.add(c);
        }
        for (const e of await ourExtents(out)) {
          if (e.kind !== 'data') continue;
          for (let c = Math.floor(e.offset / cs); c < Math.ceil((e.offset + e.length) / cs); c++) expect(touched.has(c)).toBe(true);
        }
      });
    }
  });

  describe('-c (zlib raw deflate)', () => {
    for (const o of ['', 'cluster_size=4k', 'cluster_size=512', 'cluster_size=2M', 'compat=0.10', 'extended_l2=on', 'cluster_size=4k,refcount_bits=1', 'refcount_bits=64']) {
      it(`-o ${o || '(defaults)'}: clean, identical, no larger than qemu-img convert -c`, async () => {
        const tag = o.replace(/[=,]/g, '_') || 'default';
        const ours = join(dir, `c-${tag}.qcow2`);
        const theirs = join(dir, `qc-${tag}.qcow2`);
        await ourConvert(source, ours, { options: o, compress: true });
        qemuImg('convert', '-f', 'raw', '-O', 'qcow2', '-c', ...(o ? ['-o', o] : []), source, theirs);
        await expectClean(ours);
        expect(qemuCompare(source, ours).same).toBe(true);
        expect(statSync(ours).size).toBeLessThanOrEqual(statSync(theirs).size);
        const q = qemuCheck(ours);
        expect(q.json['compressed-clusters']).toBeGreaterThan(0);
      });
    }

    it('output does not depend on the number of parallel jobs', async () => {
      const one = join(dir, 'par1.qcow2');
      const four = join(dir, 'par4.qcow2');
      await ourConvert(source, one, { compress: true, parallelism: 1 });
      await ourConvert(source, four, { compress: true, parallelism: 4 });
      expect(Buffer.compare(readFileSync(one), readFileSync(four))).toBe(0);
    });

    it('incompressible clusters are stored plain, compressible ones compressed', async () => {
      const out = join(dir, 'mixed-c.qcow2');
      await ourConvert(source, out, { compress: true });
      const q = qemuCheck(out).json;
      // 1 MiB of pseudo-random data (16 clusters) cannot shrink; the rest compresses.
      expect(q['allocated-clusters'] - q['compressed-clusters']).toBeGreaterThanOrEqual(16);
      expect(q['compressed-clusters']).toBeGreaterThan(0);
    });
  });

  describe('one pass to a pipe', () => {
    for (const name of ['compat=1.1 with zero, discarded and compressed clusters', 'three-deep backing chain with overlapping writes (16, 24, 32 MiB)', 'empty image']) {
      it(`${name}: valid image, identical content, holes left unallocated`, async () => {
        const src = images.get(name)!;
        const out = join(dir, `pipe-${name.replace(/[^a-z0-9]+/gi, '_')}.qcow2`);
        writeFileSync(out, await toPipe(src));
        await expectClean(out);
        expect(qemuCompare(src, out).text).toMatch(/Images are identical/);
        const unalloc = (await ourExtents(out)).filter((e) => e.kind === 'zero' && e.present === false).reduce((n, e) => n + e.length, 0);
        const srcNoData = (await ourExtents(src)).filter((e) => e.kind !== 'data').reduce((n, e) => n + e.length, 0);
        expect(unalloc).toBeGreaterThan(0);
        expect(unalloc).toBeLessThanOrEqual(srcNoData);
      });
    }

    it('with options (compat=0.10, 4k clusters, extended L2, refcount_bits=1)', async () => {
      const src = images.get('compat=1.1 with zero, discarded and compressed clusters')!;
      for (const options of [{ compat: '0.10', cluster_size: '4k' }, { extended_l2: 'on' }, { refcount_bits: '1', cluster_size: '512' }]) {
        const out = join(dir, `pipe-opt-${Object.values(options).join('-')}.qcow2`);
        writeFileSync(out, await toPipe(src, options));
        await expectClean(out);
        expect(qemuCompare(src, out).same).toBe(true);
      }
    });

    it('the CLI writes qcow2 to standard output', () => {
      const src = images.get('cluster_size=64k')!;
      const r = guestkitBinary(['convert', '-O', 'qcow2', src, '-']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = join(dir, 'cli-pipe.qcow2');
      writeFileSync(out, r.stdout);
      expect(qemuCompare(src, out).same).toBe(true);
    });
  });

  it('a 1 TiB sparse qcow2 converts in seconds, to a file and to a pipe, with bounded memory', async () => {
    const big = join(dir, 'big.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', big, '1T');
    qemuIo('qcow2', big, 'write -P 0x11 0 1M', 'write -P 0x22 500G 4M', 'write -c -P 0x33 1023G 1M');
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const out = join(dir, 'big-out.qcow2');
    await ourConvert(big, out);
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(10);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    expect(statSync(out).size).toBeLessThan(16 * 1024 * 1024);
    await expectClean(out);
    expect(qemuCompare(big, out).same).toBe(true);

    const t1 = performance.now();
    const piped = join(dir, 'big-pipe.qcow2');
    writeFileSync(piped, await toPipe(big));
    expect((performance.now() - t1) / 1000).toBeLessThan(10);
    expect(statSync(piped).size).toBeLessThan(16 * 1024 * 1024);
    await expectClean(piped);
    expect(qemuCompare(big, piped).same).toBe(true);
  });

  it('refcount tables of several clusters (512-byte clusters, 64-bit refcounts), to a file and to a pipe', async () => {
    const dense = join(dir, 'dense.raw');
    writeFileSync(dense, pseudoRandom(3 * 1024 * 1024, 21));
    const out = join(dir, 'dense.qcow2');
    await ourConvert(dense, out, { options: 'cluster_size=512,refcount_bits=64' });
    expect(readFileSync(out).readUInt32BE(56)).toBeGreaterThan(1);
    await expectClean(out);
    expect(qemuCompare(dense, out).same).toBe(true);
    const piped = join(dir, 'dense-pipe.qcow2');
    writeFileSync(piped, await toPipe(out, { cluster_size: '512', refcount_bits: '64' }));
    expect(readFileSync(piped).readUInt32BE(56)).toBeGreaterThan(1);
    await expectClean(piped);
    expect(qemuCompare(dense, piped).same).toBe(true);
  });

  describe('creating an overlay (a writer that receives no blocks)', () => {
    it('backing_file and backing_fmt: qemu-img sees the chain, reads through it, and can write to it', async () => {
      const base = images.get('cluster_size=64k')!;
      const overlay = join(dir, 'overlay.qcow2');
      const sink = await FileSink.open(overlay, 'w');
      const baseReader = await openImage(base);
      const size = baseReader.virtualSize;
      await baseReader.close();
      const w = await qcow2Driver.create!(sink, {
        virtualSize: size,
        options: qcow2Driver.optionsSchema!.parse({ backing_file: 'c64k.qcow2', backing_fmt: 'qcow2' }),
        file: overlay,
      });
      await w.finish();
      await sink.close();
      const q = qemuInfo(overlay);
      expect(q['backing-filename']).toBe('c64k.qcow2');
      expect(q['backing-filename-format']).toBe('qcow2');
      expect(q['virtual-size']).toBe(size);
      await expectClean(overlay);
      expect(qemuCompare(base, overlay).same).toBe(true);
      expect(Buffer.compare(await readAll(overlay), await readAll(base))).toBe(0);
      qemuIo('qcow2', overlay, 'write -P 0x99 64k 64k');
      expect(qemuCheck(overlay).status).toBe(0);
      const data = await readAll(overlay);
      expect(data.subarray(65536, 131072).every((b) => b === 0x99)).toBe(true);
    });

    it('zero runs written over a backing file read as zeros (zero clusters, v3 and v2)', async () => {
      const base = images.get('cluster_size=64k')!;
      for (const compat of ['1.1', '0.10']) {
        const out = join(dir, `zero-over-backing-${compat}.qcow2`);
        const sink = await FileSink.open(out, 'w');
        const w = await qcow2Driver.create!(sink, {
          virtualSize: 8 * 1024 * 1024,
          options: qcow2Driver.optionsSchema!.parse({ backing_file: 'c64k.qcow2', backing_fmt: 'qcow2', compat }),
          file: out,
        });
        await w.writeZeroes(0, 1024 * 1024);
        await w.write(1024 * 1024, new Uint8Array(65536).fill(7));
        await w.finish();
        await sink.close();
        await expectClean(out);
        const got = await readAll(out);
        const backing = await readAll(base);
        expect(got.subarray(0, 1024 * 1024).every((b) => b === 0)).toBe(true);
        expect(got.subarray(1024 * 1024, 1024 * 1024 + 65536).every((b) => b === 7)).toBe(true);
        expect(Buffer.compare(got.subarray(2 * 1024 * 1024), backing.subarray(2 * 1024 * 1024))).toBe(0);
      }
    });
  });
});
