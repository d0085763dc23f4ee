/**
 * Untrusted VMDK input: extent and parent names that leave the descriptor's folder, damaged
 * grain directories (read through the redundant copy), broken streams, sizes past every cap.
 * Each gives a typed error naming file, field and offset — or, where a redundant copy exists,
 * the right data and a warning.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkImage } from '../../src/api/check.js';
import { convert } from '../../src/api/convert.js';
import { ConfinementError, CorruptImageError, IoError, LimitExceededError, TruncatedImageError, UnsupportedFeatureError } from '../../src/errors.js';
import { describeOracle, qemuImg, qemuIo, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { descriptorText } from './build.js';
import { expectSameAsRaw, KiB, MiB, openAsPipe, openVmdk, readAll, writeRaw } from './helpers.js';

const SECTOR = 512;

async function failure(p: Promise<{ close(): Promise<void> }>): Promise<unknown> {
  return p.then(
    (r) => r.close().then(() => undefined),
    (e: unknown) => e,
  );
}

describe('extent and parent names are confined to the descriptor folder', () => {
  const root = workDir('vmdk-confine');
  const dir = join(root, 'vm');
  const other = join(root, 'other');
  mkdirSync(dir);
  mkdirSync(other);
  writeFileSync(join(other, 'x-flat.vmdk'), pseudoRandom(4096, 9));
  writeFileSync(join(dir, 'x-flat.vmdk'), pseudoRandom(4096, 9));

  const refused: Array<[string, string]> = [
    ['an absolute path (/etc/passwd)', 'RW 8 FLAT "/etc/passwd" 0'],
    ['a relative path climbing out (../../x)', 'RW 8 FLAT "../../x" 0'],
    ['a sibling folder (../other/x-flat.vmdk)', 'RW 8 FLAT "../other/x-flat.vmdk" 0'],
  ];
  for (const [what, line] of refused) {
    it(`refuses ${what} by default`, async () => {
      const path = join(dir, `${what.replace(/\W+/g, '-')}.vmdk`);
      writeFileSync(path, descriptorText({ createType: 'monolithicFlat', extents: [line] }));
      const err = await failure(openVmdk(path));
      expect(err).toBeInstanceOf(ConfinementError);
      expect(err).toMatchObject({ file: path, field: 'extent' });
    });
  }

  it('follows a path outside only when the caller allows it', async () => {
    const path = join(dir, 'outside.vmdk');
    writeFileSync(path, descriptorText({ createType: 'monolithicFlat', extents: ['RW 8 FLAT "../other/x-flat.vmdk" 0'] }));
    const r = await openVmdk(path, { allowOutside: true });
    try {
      expect(Buffer.from(await readAll(r)).equals(Buffer.from(pseudoRandom(4096, 9)))).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('refuses a symlink inside the folder that points outside it', async () => {
    symlinkSync(join(other, 'x-flat.vmdk'), join(dir, 'link-flat.vmdk'));
    const path = join(dir, 'link.vmdk');
    writeFileSync(path, descriptorText({ createType: 'monolithicFlat', extents: ['RW 8 FLAT "link-flat.vmdk" 0'] }));
    expect(await failure(openVmdk(path))).toBeInstanceOf(ConfinementError);
  });

  it('refuses a delta that is its own parent (a loop), with a typed error', async () => {
    const path = join(dir, 'loop.vmdk');
    writeFileSync(path, descriptorText({ createType: 'monolithicFlat', parentCID: '1234', parentHint: 'loop.vmdk', extents: ['RW 8 FLAT "x-flat.vmdk" 0'] }));
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(String((err as Error).message)).toMatch(/loops/);
  });

  it('refuses a parentFileNameHint outside the folder', async () => {
    const path = join(dir, 'child.vmdk');
    writeFileSync(path, descriptorText({ createType: 'monolithicFlat', parentCID: '1234', parentHint: '/etc/passwd', extents: ['RW 8 FLAT "x-flat.vmdk" 0'] }));
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(ConfinementError);
    expect(err).toMatchObject({ field: 'parent' });
    // Without backing files (info -U), the hint is shown but not followed.
    const r = await openVmdk(path, { openBacking: false });
    try {
      expect(r.info().backingFile).toBe('/etc/passwd');
    } finally {
      await r.close();
    }
  });
});

describeOracle('damaged grain directories are read through their redundant copy', () => {
  const dir = workDir('vmdk-rgd');
  const src = join(dir, 'src.raw');
  const img = join(dir, 'good.vmdk');
  writeRaw(src, 40 * MiB, [
    { at: 0, length: 256 * KiB, kind: 'random', seed: 1 },
    { at: 33 * MiB, length: 64 * KiB, kind: 'random', seed: 2 },
  ]);
  qemuImg('convert', '-f', 'raw', '-O', 'vmdk', src, img);
  const good = readFileSync(img);
  const hdr = new DataView(good.buffer, good.byteOffset);
  const gdSector = Number(hdr.getBigUint64(56, true));
  const rgdSector = Number(hdr.getBigUint64(48, true));

  it('a primary directory pointing past the end of the file', async () => {
    const bad = Buffer.from(good);
    bad.writeUInt32LE(0x7fffff00, gdSector * SECTOR);
    const path = join(dir, 'bad-gd.vmdk');
    writeFileSync(path, bad);
    const r = await openVmdk(path);
    try {
      await expectSameAsRaw(r, src);
      expect(r.info().warnings?.[0]).toMatch(/primary grain directory is damaged .*using the redundant copy/);
    } finally {
      await r.close();
    }
    const check = await checkImage(path);
    expect(check!.corruptions).toBe(1);
  });

  it('a primary grain table with an entry past the end of the file', async () => {
    const bad = Buffer.from(good);
    const gt0 = bad.readUInt32LE(gdSector * SECTOR);
    bad.writeUInt32LE(0x7fffff00, gt0 * SECTOR + 4);
    const path = join(dir, 'bad-gt.vmdk');
    writeFileSync(path, bad);
    const r = await openVmdk(path);
    try {
      await expectSameAsRaw(r, src);
      expect(r.info().warnings).toEqual(['grain table 0 is damaged; using its redundant copy']);
    } finally {
      await r.close();
    }
    expect((await checkImage(path))!.messages).toContain('ERROR: grain table 0 differs from its redundant copy');
  });

  it('both copies damaged: a typed error naming the entry', async () => {
    const bad = Buffer.from(good);
    for (const dirSector of [gdSector, rgdSector]) bad.writeUInt32LE(0x7fffff00, dirSector * SECTOR);
    const path = join(dir, 'bad-both.vmdk');
    writeFileSync(path, bad);
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err).toMatchObject({ file: path, field: 'grain directory entry', offset: gdSector * SECTOR });
  });

  it('a grain entry past the end with no redundant copy fails the read that reaches it, and check reports it as qemu-img does', async () => {
    const bad = Buffer.from(good);
    bad.writeUInt32LE(bad.readUInt32LE(8) & ~2, 8); // no redundant directory
    const gt0 = bad.readUInt32LE(gdSector * SECTOR);
    bad.writeUInt32LE(0x7fffff00, gt0 * SECTOR + 4);
    const path = join(dir, 'bad-entry.vmdk');
    writeFileSync(path, bad);
    const r = await openVmdk(path);
    try {
      expect(Buffer.from(await r.read(0, 64 * KiB)).equals(Buffer.from(pseudoRandom(256 * KiB, 1).subarray(0, 64 * KiB)))).toBe(true);
      await expect(r.read(64 * KiB, 64 * KiB)).rejects.toMatchObject({ field: 'grain table entry', offset: gt0 * SECTOR + 4 });
    } finally {
      await r.close();
    }
    const check = await checkImage(path);
    expect(check!.messages).toEqual(['ERROR: cluster offset for sector 128 points after EOF']);
  });

  it('a truncated file is refused, as qemu-img refuses it', async () => {
    const path = join(dir, 'truncated.vmdk');
    writeFileSync(path, good.subarray(0, 100 * SECTOR));
    expect(await failure(openVmdk(path))).toBeInstanceOf(TruncatedImageError);
  });
});

describeOracle('broken streams', () => {
  const dir = workDir('vmdk-stream-bad');
  const src = join(dir, 'src.raw');
  writeRaw(src, 8 * MiB, [
    { at: 0, length: 128 * KiB, kind: 'random', seed: 1 },
    { at: 5 * MiB, length: 64 * KiB, kind: 'text' },
  ]);
  const img = join(dir, 'ours.vmdk');

  it('a footer that is not there is refused (qemu-img: "Invalid footer")', async () => {
    await convert({ source: src, output: img, format: 'vmdk', compress: true, durable: false });
    const bytes = readFileSync(img);
    const path = join(dir, 'no-footer.vmdk');
    writeFileSync(path, bytes.subarray(0, bytes.length - 1024));
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err).toMatchObject({ file: path, field: 'footer' });
  });

  it('grains out of order cannot be read from a pipe, but can from the file', async () => {
    const q = join(dir, 'q.vmdk');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', src, q);
    // Swap the two grain markers' LBAs and the table entries that point at them.
    const bytes = readFileSync(q);
    const overHead = Number(bytes.readBigUInt64LE(64));
    const first = overHead * SECTOR;
    const size1 = bytes.readUInt32LE(first + 8);
    const second = first + Math.ceil((12 + size1) / SECTOR) * SECTOR;
    const lba1 = bytes.readBigUInt64LE(first);
    const lba2 = bytes.readBigUInt64LE(second);
    bytes.writeBigUInt64LE(lba2, first);
    bytes.writeBigUInt64LE(lba1, second);
    const path = join(dir, 'swapped.vmdk');
    writeFileSync(path, bytes);
    const err = await failure(
      openAsPipe(path).then(async (r) => {
        await readAll(r);
        return r;
      }),
    );
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err).toMatchObject({ field: 'grain marker lba' });
    // From the file, the grain tables decide; QEMU ignores marker LBAs there too.
    const ref = join(dir, 'swapped.raw');
    qemuToRaw(path, ref, 'vmdk');
    const r = await openVmdk(path);
    try {
      await expectSameAsRaw(r, ref);
    } finally {
      await r.close();
    }
  });

  it('a grain marker LBA outside the disk, and a grain that does not inflate, are corrupt', async () => {
    await convert({ source: src, output: img, format: 'vmdk', compress: true, durable: false, force: true });
    const bytes = readFileSync(img);
    const first = Number(bytes.readBigUInt64LE(64)) * SECTOR;
    const lbaOut = Buffer.from(bytes);
    lbaOut.writeBigUInt64LE(1n << 40n, first);
    writeFileSync(join(dir, 'lba.vmdk'), lbaOut);
    const e1 = await failure(openAsPipe(join(dir, 'lba.vmdk')).then(async (r) => (await readAll(r), r)));
    expect(e1).toBeInstanceOf(CorruptImageError);
    expect(e1).toMatchObject({ field: 'grain marker lba', offset: first });
    const garbage = Buffer.from(bytes);
    garbage.fill(0x55, first + 12, first + 40);
    writeFileSync(join(dir, 'garbage.vmdk'), garbage);
    for (const open of [() => openVmdk(join(dir, 'garbage.vmdk')), () => openAsPipe(join(dir, 'garbage.vmdk'))]) {
      const e2 = await failure(open().then(async (r) => (await readAll(r), r)));
      expect(e2).toBeInstanceOf(CorruptImageError);
      expect(e2).toMatchObject({ field: 'compressed grain' });
    }
  });

  it('reading a pipe backwards is refused with one clear line', async () => {
    await convert({ source: src, output: img, format: 'vmdk', compress: true, durable: false, force: true });
    const r = await openAsPipe(img);
    try {
      await r.read(5 * MiB, 64 * KiB);
      await expect(r.read(0, 512)).rejects.toBeInstanceOf(IoError);
    } finally {
      await r.close();
    }
  });
});

describe('sizes past every cap', () => {
  const dir = workDir('vmdk-caps');

  it('a descriptor file over 1 MiB', async () => {
    const path = join(dir, 'huge.vmdk');
    writeFileSync(path, `version=1\n${'#'.repeat(1 << 20)}\n`);
    expect(await failure(openVmdk(path))).toBeInstanceOf(LimitExceededError);
  });

  it('more extents than files we will open', async () => {
    const path = join(dir, 'many.vmdk');
    writeFileSync(path, descriptorText({ createType: 'monolithicFlat', extents: Array.from({ length: 8193 }, () => 'RW 1 ZERO') }));
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ field: 'extent description' });
  });

  it('a grain directory larger than the file', async () => {
    const h = new Uint8Array(4 * SECTOR);
    const dv = new DataView(h.buffer);
    h.set(Buffer.from('KDMV'));
    dv.setUint32(4, 1, true);
    dv.setBigUint64(12, 1n << 40n, true); // 512 TiB: 2^23 GD entries, 32 MiB of directory
    dv.setBigUint64(20, 128n, true);
    dv.setUint32(44, 512, true);
    dv.setBigUint64(56, 1n, true);
    dv.setBigUint64(64, 1n, true);
    const path = join(dir, 'gd.vmdk');
    writeFileSync(path, h);
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(TruncatedImageError);
    expect(err).toMatchObject({ field: 'grain directory', offset: SECTOR });
  });

  it('compressed grains larger than 1 MiB', async () => {
    const h = new Uint8Array(SECTOR);
    const dv = new DataView(h.buffer);
    h.set(Buffer.from('KDMV'));
    dv.setUint32(4, 3, true);
    dv.setUint32(8, 0x30000, true);
    dv.setBigUint64(12, 1n << 20n, true);
    dv.setBigUint64(20, 4096n, true);
    dv.setUint32(44, 512, true);
    dv.setUint16(77, 1, true);
    const path = join(dir, 'biggrain.vmdk');
    writeFileSync(path, h);
    const err = await failure(openVmdk(path));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ field: 'grainSize', offset: 20 });
  });

  it('unknown incompatible flags and versions are unsupported, not misread', async () => {
    const base = new Uint8Array(SECTOR);
    base.set(Buffer.from('KDMV'));
    const dv = new DataView(base.buffer);
    dv.setUint32(4, 4, true);
    writeFileSync(join(dir, 'v4.vmdk'), base);
    expect(await failure(openVmdk(join(dir, 'v4.vmdk')))).toMatchObject({ field: 'version', offset: 4 });
    dv.setUint32(4, 1, true);
    dv.setUint32(8, 0x80000, true);
    writeFileSync(join(dir, 'flags.vmdk'), base);
    const err = await failure(openVmdk(join(dir, 'flags.vmdk')));
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err).toMatchObject({ field: 'flags', offset: 8 });
  });

  it('a copy of a good image is still good (the mutations above are what broke them)', async () => {
    const path = join(dir, 'ok.raw');
    writeFileSync(path, pseudoRandom(64 * KiB, 1));
    await convert({ source: path, output: join(dir, 'ok.vmdk'), format: 'vmdk', durable: false });
    copyFileSync(join(dir, 'ok.vmdk'), join(dir, 'ok2.vmdk'));
    const r = await openVmdk(join(dir, 'ok2.vmdk'));
    await r.close();
  });
});

describeOracle('qemu-io writes into our images', () => {
  const dir = workDir('vmdk-qemu-io');
  it('qemu-img can keep writing to a monolithicSparse we made', async () => {
    const src = join(dir, 's.raw');
    writeRaw(src, 4 * MiB, [{ at: 0, length: 100 * KiB, kind: 'random' }]);
    const img = join(dir, 's.vmdk');
    await convert({ source: src, output: img, format: 'vmdk', durable: false });
    qemuIo('vmdk', img, 'write -P 0x77 2M 64k');
    const ref = join(dir, 's2.raw');
    qemuToRaw(img, ref, 'vmdk');
    const r = await openVmdk(img);
    try {
      await expectSameAsRaw(r, ref);
      expect((await r.read(2 * MiB, 64 * KiB)).every((b) => b === 0x77)).toBe(true);
    } finally {
      await r.close();
    }
  });
});
