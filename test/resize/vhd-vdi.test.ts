/**
 * resize for the formats qemu-img cannot resize (VHD fixed/dynamic, VDI static/dynamic): after
 * guestkit resizes an image — made by qemu-img or by our writers — qemu-img reads the size we
 * report, finds the old content followed by zeros (convert -O raw), and `qemu-img check` (VDI;
 * qemu has no VHD check) finds nothing wrong. Layouts where the table must grow into the first
 * data blocks move those blocks, and the tests check that they did.
 */
import { readFileSync, statSync } from 'node:fs';
import { expect, it } from 'vitest';
import { resize } from '../../src/api/resize.js';
import { openImage } from '../../src/formats/open.js';
import { createGeometry } from '../../src/formats/vhd/geometry.js';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { KiB, MiB, contentFor, copyOf, expectQemuCheckClean, grownContent, makeImage, qemuContent, qemuVirtualSize } from './helpers.js';

async function ourContent(path: string): Promise<Buffer> {
  const r = await openImage(path);
  try {
    return Buffer.from(await r.read(0, r.virtualSize));
  } finally {
    await r.close();
  }
}

const be32 = (b: Buffer, at: number) => b.readUInt32BE(at);
const le32 = (b: Buffer, at: number) => b.readUInt32LE(at);

/** The first BAT entry of a dynamic VHD laid out as qemu and our writer lay it out (BAT at 1536). */
const firstBatEntry = (path: string) => be32(readFileSync(path), 1536);
/** VDI offData (0x158) and blocks allocated / in image (0x184 / 0x180). */
const vdiFields = (path: string) => {
  const b = readFileSync(path);
  return { offData: le32(b, 0x158), blocks: le32(b, 0x180), allocated: le32(b, 0x184), type: le32(b, 0x4c) };
};

interface Case {
  name: string;
  fmt: 'vhd' | 'vdi';
  by: 'qemu' | 'ours';
  options: string;
  size: number;
  to: string;
  shrink?: boolean;
  /** Expected size, when it is not simply the request rounded to a sector. */
  expect?: (requested: number) => number;
  /** Write the content with qemu-io after creating an empty image (qemu's block order: by time of write). */
  writeFirst?: boolean;
  relocates?: boolean;
  /** No data at all: no blocks. */
  empty?: boolean;
}

const chs = (n: number) => createGeometry(n, false)!.size;

const CASES: Case[] = [
  { name: 'fixed VHD by qemu-img grows to a CHS-rounded size', fmt: 'vhd', by: 'qemu', options: 'subformat=fixed', size: 4 * MiB, to: '+3M', expect: chs },
  { name: 'fixed VHD by qemu-img with force_size grows to the exact size', fmt: 'vhd', by: 'qemu', options: 'subformat=fixed,force_size=on', size: 4 * MiB, to: '10M' },
  { name: 'fixed VHD by guestkit shrinks with --shrink', fmt: 'vhd', by: 'ours', options: 'subformat=fixed', size: 6 * MiB, to: '-2M', shrink: true, expect: chs },
  { name: 'dynamic VHD by qemu-img grows within its BAT sector', fmt: 'vhd', by: 'qemu', options: '', size: 8 * MiB, to: '+20M', expect: chs },
  {
    name: 'dynamic VHD by qemu-img: the BAT grows over the first blocks, which move to the end',
    fmt: 'vhd',
    by: 'qemu',
    options: '',
    size: 6 * MiB,
    to: '270M',
    expect: chs,
    writeFirst: true,
    relocates: true,
  },
  {
    name: 'dynamic VHD by guestkit with 4 KiB blocks: many blocks move',
    fmt: 'vhd',
    by: 'ours',
    options: 'block_size=4k',
    size: 2 * MiB,
    to: '+6M',
    expect: chs,
    relocates: true,
  },
  { name: 'dynamic VHD by guestkit with force_size, empty: the BAT grows past the footer', fmt: 'vhd', by: 'ours', options: 'block_size=4k,force_size=on', size: MiB, to: '5M', empty: true },
  { name: 'dynamic VDI by qemu-img: the map grows into the first block, which moves', fmt: 'vdi', by: 'qemu', options: '', size: 5 * MiB, to: '140M', writeFirst: true, relocates: true },
  { name: 'static VDI by qemu-img: map relocation, new blocks appended', fmt: 'vdi', by: 'qemu', options: 'static=on', size: 4 * MiB, to: '+136M', relocates: true },
  { name: 'dynamic VDI by guestkit, odd size: the last block tail is zeroed', fmt: 'vdi', by: 'ours', options: '', size: 5 * MiB + 3 * KiB, to: '+2M' },
  { name: 'static VDI by guestkit grows in place', fmt: 'vdi', by: 'ours', options: 'static=on', size: 3 * MiB, to: '+1M' },
];

describeOracle('resize VHD and VDI (checked with qemu-img)', () => {
  const dir = workDir('resize-vhd-vdi');

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const content = c.empty ? new Uint8Array(c.size) : contentFor(c.size, 300 + 10 * i);
      let image: string;
      if (c.writeFirst) {
        // Empty image, then data written by qemu-io at the start first: its block lies right after the table.
        image = `${dir}/w${i}.${c.fmt}`;
        qemuImg('create', '-f', c.fmt === 'vhd' ? 'vpc' : c.fmt, ...(c.options ? ['-o', c.options] : []), image, String(c.size));
        const f = c.fmt === 'vhd' ? 'vpc' : c.fmt;
        qemuIo(f, image, `write -P 0x11 0 ${64 * KiB}`, `write -P 0x22 ${c.size - 64 * KiB} ${64 * KiB}`, `write -P 0x33 ${MiB + 512} 4k`);
        content.fill(0);
        content.fill(0x11, 0, 64 * KiB);
        content.fill(0x22, c.size - 64 * KiB);
        content.fill(0x33, MiB + 512, MiB + 512 + 4096);
      } else {
        image = await makeImage(dir, `i${i}.${c.fmt}`, c.fmt, content, c.options, c.by);
      }
      const oldSize = qemuVirtualSize(image, c.fmt);
      const old = qemuContent(image, c.fmt, dir);
      expect(old.subarray(0, content.length).equals(Buffer.from(content))).toBe(true);
      const before = copyOf(image, 'before');

      const r = await resize({ image, size: c.to, shrink: c.shrink });
      const requested = c.to.startsWith('+') ? oldSize + Number.parseInt(c.to.slice(1)) * MiB : c.to.startsWith('-') ? oldSize - Number.parseInt(c.to.slice(1)) * MiB : Number.parseInt(c.to) * MiB;
      const want = c.expect ? c.expect(requested) : requested;
      expect(r).toMatchObject({ oldSize, newSize: want });
      expect(qemuVirtualSize(image, c.fmt)).toBe(want);
      const got = qemuContent(image, c.fmt, dir);
      expect(got.equals(grownContent(old, want))).toBe(true);
      expect((await ourContent(image)).equals(got)).toBe(true);
      if (c.fmt === 'vdi') {
        expectQemuCheckClean(image, 'vdi');
        const v = vdiFields(image);
        expect(v.offData !== vdiFields(before).offData).toBe(c.relocates === true);
        if (c.options.includes('static')) {
          expect(v.type).toBe(2);
          expect(v.allocated).toBe(v.blocks);
        }
      } else if (c.options.includes('fixed')) {
        expect(statSync(image).size).toBe(want + 512);
      } else {
        // Footer copy at offset 0 = footer at the end.
        const b = readFileSync(image);
        expect(b.subarray(0, 512).equals(b.subarray(b.length - 512))).toBe(true);
        expect(firstBatEntry(image) !== firstBatEntry(before)).toBe(c.relocates === true);
      }
    });
  });
});
