/**
 * One suite over every registered driver, switched by what the driver says it can do: a new format
 * is tested here by adding its folder and its registry line. A pseudo-random sparse raw image is
 * converted to each writable format through the library and read back through our reader (the
 * same bytes), compressed where the format compresses, written to a pipe where it streams, read
 * from a pipe, created empty and resized where the driver can. Where qemu-img knows the format (by
 * the driver's qemu name), it must agree: `qemu-img compare` finds the same content and
 * `qemu-img check` finds the image clean.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { createImage } from '../../src/api/create.js';
import { resize } from '../../src/api/resize.js';
import { openImage } from '../../src/formats/open.js';
import { drivers, fallbackDriver, qemuName } from '../../src/formats/registry.js';
import type { FormatDriver } from '../../src/formats/types.js';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { QEMU_IMG, describeOracle, expectQemuCheckClean, qemuImgStatus, qemuInfoJson } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('registry-roundtrip');
/** Not a multiple of any cluster, grain or block size, so every writer handles a partial last unit. */
const SIZE = 5 * 1024 * 1024 + 7 * 512;

/** Runs of random data at odd offsets and lengths, zeros between them, data in the last sector. */
function sparseSource(): Buffer {
  const bytes = Buffer.alloc(SIZE);
  const noise = pseudoRandom(SIZE, 42);
  const pick = pseudoRandom(64, 9);
  for (let i = 0; i < 16; i++) {
    const at = Math.floor(((pick[i * 2] * 256 + pick[i * 2 + 1]) / 65536) * (SIZE - 200_000));
    const len = 1 + pick[32 + i] * 500;
    bytes.set(noise.subarray(at, at + len), at);
  }
  bytes.set(noise.subarray(SIZE - 512), SIZE - 512);
  return bytes;
}

const SOURCE = join(dir, 'source.raw');
const expected = sparseSource();
writeFileSync(SOURCE, expected);

const writable = drivers().filter((d) => d.capabilities.write && d.create && d.open);
const extension = (d: FormatDriver) => d.extensions[0] ?? d.name;

/** The image reads back, detected from its content, as the source: its bytes, then zeros where the format rounds the size up. */
async function expectSourceContent(path: string, d: FormatDriver): Promise<void> {
  const r = await openImage(path);
  try {
    expect(r.format).toBe(d.name);
    expect(r.virtualSize).toBeGreaterThanOrEqual(SIZE);
    const all = Buffer.from(await r.read(0, r.virtualSize));
    expect(all.subarray(0, SIZE).equals(expected)).toBe(true);
    expect(all.subarray(SIZE).every((b) => b === 0)).toBe(true);
  } finally {
    await r.close();
  }
}

describe('every writable driver of the registry', () => {
  it('includes every format that can write, and exactly one fallback', () => {
    expect(writable.length).toBeGreaterThanOrEqual(5);
    expect(drivers().filter((d) => d.fallback)).toEqual([fallbackDriver()]);
  });

  for (const d of writable) {
    describe(d.name, () => {
      it('converts from raw and reads back the same bytes', async () => {
        const out = join(dir, `plain.${extension(d)}`);
        await convert({ source: SOURCE, output: out, format: d.name, force: true });
        await expectSourceContent(out, d);
      });

      if (d.capabilities.compression) it('compresses (-c) and reads back the same bytes', async () => {
        const out = join(dir, `compressed.${extension(d)}`);
        await convert({ source: SOURCE, output: out, format: d.name, compress: true, force: true });
        await expectSourceContent(out, d);
      });

      if (d.capabilities.streamWrite) it('writes to a pipe an image that reads back the same bytes', async () => {
        const r = guestkitBinary(['convert', '-O', d.name, SOURCE, '-']);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const out = join(dir, `piped.${extension(d)}`);
        writeFileSync(out, r.stdout);
        await expectSourceContent(out, d);
      });

      it('is read from a pipe, detected by content', async () => {
        const image = join(dir, `for-pipe.${extension(d)}`);
        await convert({ source: SOURCE, output: image, format: d.name, force: true });
        const out = join(dir, `from-pipe-${d.name}.raw`);
        const r = guestkit(['convert', '--force', '-O', fallbackDriver().name, '-', out], { input: readFileSync(image) });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const got = readFileSync(out);
        expect(got.subarray(0, SIZE).equals(expected)).toBe(true);
      });

      it('creates an empty image that reads as zeros', async () => {
        const out = join(dir, `empty.${extension(d)}`);
        await createImage({ format: d.name, path: out, size: SIZE, force: true });
        const r = await openImage(out);
        try {
          expect(r.format).toBe(d.name);
          expect(r.virtualSize).toBeGreaterThanOrEqual(SIZE);
          expect((await r.read(0, r.virtualSize)).every((b) => b === 0)).toBe(true);
        } finally {
          await r.close();
        }
      });

      if (d.resize !== undefined) it('grows in place, keeping its content', async () => {
        const out = join(dir, `grown.${extension(d)}`);
        await convert({ source: SOURCE, output: out, format: d.name, force: true });
        const res = await resize({ image: out, size: '+1M' });
        expect(res.newSize).toBeGreaterThanOrEqual(res.oldSize + 1024 * 1024);
        const r = await openImage(out);
        try {
          expect(r.virtualSize).toBe(res.newSize);
          const all = Buffer.from(await r.read(0, r.virtualSize));
          expect(all.subarray(0, SIZE).equals(expected)).toBe(true);
          expect(all.subarray(SIZE).every((b) => b === 0)).toBe(true);
        } finally {
          await r.close();
        }
      });
    });
  }
});

/** The formats this qemu-img was built with ("Supported formats:" of its help). */
function qemuFormats(): Set<string> {
  if (!QEMU_IMG) return new Set();
  const help = qemuImgStatus('--help').stdout;
  return new Set((/Supported formats:(.*)/.exec(help)?.[1] ?? '').trim().split(/\s+/));
}

describeOracle('qemu-img agrees on what every writable driver writes', () => {
  const known = qemuFormats();
  // A format qemu-img does not have is left out below; a wrong qemu name must not hide the ones it has.
  it('knows our five writable formats by their qemu names', () => {
    expect(writable.filter((d) => known.has(qemuName(d.name))).map((d) => qemuName(d.name))).toEqual(expect.arrayContaining(['qcow2', 'raw', 'vdi', 'vmdk', 'vpc']));
  });
  for (const d of writable.filter((x) => known.has(qemuName(x.name)))) {
    const q = qemuName(d.name);
    const variants = [{ label: 'plain', compress: false }, ...(d.capabilities.compression ? [{ label: 'compressed', compress: true }] : [])];
    for (const v of variants) {
      it(`${d.name} (${v.label}): qemu-img compare -F ${q} finds the source's content; check and info agree`, async () => {
        const out = join(dir, `oracle-${v.label}.${extension(d)}`);
        await convert({ source: SOURCE, output: out, format: d.name, compress: v.compress, force: true });
        const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', q, SOURCE, out);
        expect(cmp.status, `${cmp.stdout}${cmp.stderr}`).toBe(0);
        // qemu-img checks the formats whose metadata we check too; for the others it exits 63.
        if (d.check) expectQemuCheckClean(out, q);
        else expect(qemuImgStatus('check', '-f', q, out).status).toBe(63);
        const r = await openImage(out);
        try {
          expect(qemuInfoJson(out, q)['virtual-size']).toBe(r.virtualSize);
        } finally {
          await r.close();
        }
      });
    }

    if (d.capabilities.streamWrite) it(`${d.name} written to a pipe: qemu-img compare finds the source's content`, () => {
      const r = guestkitBinary(['convert', '-O', d.name, SOURCE, '-']);
      expect(r.status).toBe(0);
      const out = join(dir, `oracle-piped.${extension(d)}`);
      writeFileSync(out, r.stdout);
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', q, SOURCE, out);
      expect(cmp.status, `${cmp.stdout}${cmp.stderr}`).toBe(0);
    });

    it(`${d.name} created empty: qemu-img reads the same size and all zeros`, async () => {
      const out = join(dir, `oracle-empty.${extension(d)}`);
      await createImage({ format: d.name, path: out, size: SIZE, force: true });
      const r = await openImage(out);
      const size = r.virtualSize;
      await r.close();
      expect(qemuInfoJson(out, q)['virtual-size']).toBe(size);
      const zeros = join(dir, 'zeros.raw');
      writeFileSync(zeros, Buffer.alloc(size));
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', q, zeros, out);
      expect(cmp.status, `${cmp.stdout}${cmp.stderr}`).toBe(0);
    });
  }
});
