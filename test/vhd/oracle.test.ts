/**
 * VHD against qemu-img 7.2: every variant qemu-img writes reads byte for byte as
 * `qemu-img convert -O raw` reads it, with the same virtual size and allocation map; every image
 * guestkit writes (to a file or a pipe) is identical to its source for `qemu-img compare` and
 * laid out as qemu lays out its own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, expect, it, vi } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { imageInfo } from '../../src/api/info.js';
import { toMapEntry, type MapEntry } from '../../src/api/map.js';
import { openImage } from '../../src/formats/open.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { vhdDriver } from '../../src/formats/vhd/driver.js';
import { copyImage } from '../../src/stream/copy.js';
import { StreamSink } from '../../src/stream/sink.js';
import { FileSource } from '../../src/stream/source.js';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { describeOracle, qemuImg, qemuImgStatus, qemuInfoJson, qemuIo, qemuMapEntries, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom, readImage, workDir } from '../helpers/work.js';

vi.hoisted(() => {
  // Run the CLI from the sources when no build of this code exists yet (vitest run directly).
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  if (!fs.existsSync(new URL('../../dist/formats/vhd/reader.js', import.meta.url))) process.env.GUESTKIT_CLI_FROM_SOURCE = '1';
});

const MiB = 1024 * 1024;
/** Not a multiple of the 2 MiB block, nor of a CHS cylinder (4 × 17 sectors). */
const SIZE = 7 * MiB + 1536;

/** A sparse source: data regions (one across a block boundary, one in the last sector), zeros elsewhere. */
function sourceBytes(): Uint8Array {
  const d = new Uint8Array(SIZE);
  d.set(pseudoRandom(64 * 1024, 1), 0);
  d.set(pseudoRandom(300 * 1024, 2), MiB + 512);
  d.set(pseudoRandom(12 * 1024, 3), 4 * MiB - 4096);
  d.set(pseudoRandom(512, 4), SIZE - 512);
  return d;
}

const qemuInfo = (path: string, format = 'vpc') => qemuInfoJson(path, format);
const qemuMap = (path: string, format = 'vpc') => qemuMapEntries(path, format);

const ourRead = (path: string) => readImage(path);

async function ourMap(path: string): Promise<Array<Record<string, unknown>>> {
  const r = await openImage(path);
  const out: Array<Record<string, unknown>> = [];
  for await (const e of r.extents()) out.push({ ...toMapEntry(e) });
  await r.close();
  return out;
}

/** The bytes qemu reads, padded with zeros to `size` (a rounded-up VHD is longer than its source). */
function padded(bytes: Uint8Array, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.set(bytes.subarray(0, Math.min(size, bytes.length)));
  return b;
}

describeOracle('VHD against qemu-img', () => {
  const dir = workDir('vhd-oracle');
  const src = join(dir, 'src.raw');
  const made: Record<string, string> = {};

  beforeAll(() => {
    writeFileSync(src, sourceBytes());
    const variants: Record<string, string[]> = {
      dynamic: [],
      fixed: ['-o', 'subformat=fixed'],
      'force-size': ['-o', 'force_size=on'],
      'fixed-force-size': ['-o', 'subformat=fixed,force_size=on'],
    };
    for (const [name, opts] of Object.entries(variants)) {
      made[name] = join(dir, `qemu-${name}.vhd`);
      qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...opts, src, made[name]);
    }
    // Written by qemu-io into a created image: partial blocks, a block allocated out of order.
    made.written = join(dir, 'qemu-written.vhd');
    qemuImg('create', '-q', '-f', 'vpc', made.written, '24M');
    qemuIo('vpc', made.written, 'write -P 0xcd 13M 4k', 'write -P 0xab 0 64k', `write -P 0x11 ${10 * MiB + 512} 1k`, `write -P 0x22 ${24 * MiB - 4096} 2k`);
  });

  for (const name of ['dynamic', 'fixed', 'force-size', 'fixed-force-size', 'written']) {
    it(`reads qemu's ${name} VHD as qemu-img convert -O raw does, with the same virtual size`, async () => {
      const path = made[name];
      const raw = join(dir, `${name}.raw`);
      qemuToRaw(path, raw, 'vpc');
      const want = readFileSync(raw);
      const ours = await ourRead(path);
      expect(ours.length).toBe(want.length);
      expect(ours.equals(want)).toBe(true);
      const info = await imageInfo(path);
      expect(info.format).toBe('vpc');
      expect(info['virtual-size']).toBe(qemuInfo(path)['virtual-size']);
      expect(info.subformat).toBe(name.startsWith('fixed') ? 'fixed' : 'dynamic');
      if (!name.startsWith('fixed')) {
        expect(info['cluster-size']).toBe(qemuInfo(path)['cluster-size']);
        expect(await ourMap(path)).toEqual(qemuMap(path));
      }
    });
  }

  it('decides sizes as qemu does: CHS-rounded without force_size, exact with it', async () => {
    const dyn = await imageInfo(made.dynamic);
    const g = dyn['format-specific']!.data.geometry as { cylinders: number; heads: number; 'sectors-per-track': number };
    expect(dyn['virtual-size']).toBe(g.cylinders * g.heads * g['sectors-per-track'] * 512);
    expect(dyn['virtual-size']).toBeGreaterThan(SIZE);
    expect(dyn['format-specific']!.data['virtual-size-from']).toBe('chs');
    expect((await imageInfo(made['force-size']))['virtual-size']).toBe(SIZE);
    const fs = (await imageInfo(made['force-size']))['format-specific']!.data;
    expect(fs['creator-application']).toBe('qem2');
    expect(fs['virtual-size-from']).toBe('current-size');
    expect(fs.geometry).toEqual({ cylinders: 65535, heads: 16, 'sectors-per-track': 255 });
  });

  const ourVariants: Record<string, string> = {
    dynamic: '',
    fixed: 'subformat=fixed',
    'force-size': 'force_size=on',
    'fixed-force-size': 'subformat=fixed,force_size=on',
    'block-64k': 'block_size=64k',
  };
  for (const [name, options] of Object.entries(ourVariants)) {
    it(`writes a ${name} VHD that qemu-img reads as identical to its source`, async () => {
      const out = join(dir, `ours-${name}.vhd`);
      await convert({ source: src, output: out, format: 'vpc', options });
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', 'vpc', src, out);
      expect(cmp.stdout).toContain('Images are identical');
      expect(cmp.status).toBe(0);
      // Same size rounding as qemu's own convert, and the same header fields that decide it.
      const theirs = made[name] ?? made.dynamic;
      expect(qemuInfo(out)['virtual-size']).toBe(qemuInfo(theirs)['virtual-size']);
      const a = readFileSync(out);
      const b = readFileSync(theirs);
      // Footer bytes 28..64: creator application, version and host, both sizes, CHS, disk type.
      const footerFields = (x: Buffer) => x.subarray(x.length - 512 + 28, x.length - 512 + 64).toString('hex');
      expect(footerFields(a)).toBe(footerFields(b));
      if (name.startsWith('fixed')) expect(a.length).toBe(b.length);
      if (name === 'dynamic' || name === 'force-size') {
        // Blocks where qemu puts them: the same BAT and the same map.
        expect(qemuMap(out)).toEqual(qemuMap(theirs));
        expect(a.length).toBe(b.length);
      }
      if (name === 'block-64k') expect(qemuInfo(out)['cluster-size']).toBe(64 * 1024);
      // And guestkit reads back what it wrote.
      expect((await ourRead(out)).equals(padded(readFileSync(src), (await imageInfo(out))['virtual-size']))).toBe(true);
    });
  }

  it('converts a qemu-written VHD to a VHD (reader and writer together)', async () => {
    const out = join(dir, 'ours-from-vhd.vhd');
    await convert({ source: made.written, output: out, format: 'vhd' });
    expect(qemuImgStatus('compare', '-f', 'vpc', '-F', 'vpc', made.written, out).status).toBe(0);
    // The same blocks hold data (ours in virtual order, qemu's in the order qemu-io wrote them).
    const noOffsets = (m: MapEntry[]) => m.map(({ offset: _o, ...e }) => e);
    expect(noOffsets(qemuMap(out))).toEqual(noOffsets(qemuMap(made.written)));
  });

  it('streams a dynamic VHD to a pipe in one forward pass, BAT planned from the allocation map', async () => {
    const reader = new RawReader(await FileSource.open(src), SIZE, src);
    const pipe = new PassThrough();
    const chunks: Buffer[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c));
    const sink = new StreamSink(pipe, '<pipe>');
    // A raw source is all data: planning would allocate every block. Give the writer the real map.
    const allocation = async function* () {
      yield* (await openImage(made.dynamic)).extents();
    };
    const w = await vhdDriver.create!(sink, { virtualSize: SIZE, options: {}, file: '<pipe>', allocation });
    await copyImage(reader, w);
    await w.finish();
    await sink.close();
    await reader.close();
    const out = join(dir, 'ours-pipe.vhd');
    writeFileSync(out, Buffer.concat(chunks));
    expect(qemuImgStatus('compare', '-f', 'raw', '-F', 'vpc', src, out).status).toBe(0);
    expect(qemuMap(out)).toEqual(qemuMap(made.dynamic));
  });

  it('guestkit convert -O vpc to standard output, and guestkit info, agree with qemu-img', () => {
    const r = guestkitBinary(['convert', '-f', 'vpc', '-O', 'vpc', made.written, '-']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = join(dir, 'ours-stdout.vhd');
    writeFileSync(out, r.stdout);
    expect(qemuImgStatus('compare', '-f', 'vpc', '-F', 'vpc', made.written, out).status).toBe(0);
    for (const path of [made.fixed, made.written, out]) {
      const info = guestkit(['info', '--output', 'json', path]);
      expect(info.status).toBe(0);
      const j = JSON.parse(info.stdout);
      expect(j.format).toBe('vpc');
      expect(j['virtual-size']).toBe(qemuInfo(path)['virtual-size']);
    }
  });

  it('reads a dynamic VHD whose end footer qemu would not even look at is damaged, warning', async () => {
    const img = readFileSync(made.written);
    img[img.length - 512 + 200] ^= 0xff;
    const path = join(dir, 'damaged-end.vhd');
    writeFileSync(path, img);
    const info = await imageInfo(path);
    expect(info.warnings?.join()).toMatch(/using the copy at offset 0/);
    const raw = join(dir, 'damaged-end.raw');
    qemuToRaw(path, raw, 'vpc');
    expect((await ourRead(path)).equals(readFileSync(raw))).toBe(true);
  });
});
