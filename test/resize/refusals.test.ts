/**
 * What resize refuses, and how: a typed GuestkitError naming the file (and, for a bad header, the
 * field and its offset), and the image left byte for byte as it was.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { resize } from '../../src/api/resize.js';
import { CorruptImageError, GuestkitError, TruncatedImageError, UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { describeOracle, qemuImg } from '../helpers/oracle.js';
import { sha256File, workDir } from '../helpers/work.js';
import { MiB, contentFor, makeImage } from './helpers.js';

/** Expects resize to fail with `type` and to leave the file unchanged; returns the error. */
async function refused(opts: Parameters<typeof resize>[0], type: new (...a: never[]) => GuestkitError, message: RegExp): Promise<GuestkitError> {
  const before = sha256File(opts.image);
  const e = await resize(opts).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(type);
  const g = e as GuestkitError;
  expect(g.message).toMatch(message);
  expect(g.file).toBe(opts.image);
  expect(sha256File(opts.image)).toBe(before);
  return g;
}

/** A copy of `path` with `bytes` written at `at`. */
function patched(path: string, name: string, at: number, bytes: number[]): string {
  const b = readFileSync(path);
  Buffer.from(bytes).copy(b, at);
  const out = join(path, '..', name);
  writeFileSync(out, b);
  return out;
}

describe('resize refusals', () => {
  const dir = workDir('resize-refuse');
  const images: Record<string, string> = {};
  const make = async (name: string, fmt: string, options: string, size = 2 * MiB) => (images[name] ??= await makeImage(dir, name, fmt, contentFor(size, 7), options, 'ours'));

  it('a smaller size needs --shrink (raw, fixed VHD)', async () => {
    const raw = join(dir, 'a.raw');
    writeFileSync(raw, contentFor(2 * MiB, 1));
    await refused({ image: raw, size: '-1M' }, UsageError, /--shrink/);
    await refused({ image: raw, size: '1M' }, UsageError, /--shrink/);
    await refused({ image: await make('f.vhd', 'vhd', 'subformat=fixed'), size: '1M' }, UsageError, /--shrink/);
  });

  it('formats that only grow refuse to shrink, with or without --shrink', async () => {
    for (const [name, fmt, options] of [
      ['s.qcow2', 'qcow2', ''],
      ['d.vhd', 'vhd', ''],
      ['d.vdi', 'vdi', ''],
      ['s.vdi', 'vdi', 'static=on'],
    ]) {
      const image = await make(name, fmt, options);
      for (const shrink of [false, true]) await refused({ image, size: '-1M', shrink }, UnsupportedFeatureError, /shrinking .* not supported/);
    }
  });

  it('bad sizes: zero, negative, not a size, qcow2 not a multiple of 512', async () => {
    const image = await make('b.qcow2', 'qcow2', '');
    await refused({ image, size: '0' }, UsageError, /must be positive/);
    await refused({ image, size: '-3M', shrink: true }, UsageError, /must be positive/);
    await refused({ image, size: '1x' }, UsageError, /invalid size/);
    await refused({ image, size: '+-1' }, UsageError, /invalid size change/);
    await refused({ image, size: String(4 * MiB + 1) }, UsageError, /multiple of 512/);
    await refused({ image, size: '3P' }, UsageError, /too large/);
  });

  it('formats without resize (VMDK) say so', async () => {
    const image = await make('v.vmdk', 'vmdk', '');
    await refused({ image, size: '+1M' }, UnsupportedFeatureError, /resizing vmdk images is not supported/);
  });

  it('qcow2 images marked dirty or corrupt, or encrypted, are not written', async () => {
    const image = await make('h.qcow2', 'qcow2', '');
    // incompatible_features (72..79): bit 0 dirty, bit 1 corrupt.
    await refused({ image: patched(image, 'dirty.qcow2', 79, [1]), size: '+1M' }, UnsupportedFeatureError, /dirty/);
    await refused({ image: patched(image, 'corrupt.qcow2', 79, [2]), size: '+1M' }, UnsupportedFeatureError, /corrupt/);
    const e = await refused({ image: patched(image, 'aes.qcow2', 32, [0, 0, 0, 1]), size: '+1M' }, UnsupportedFeatureError, /encrypted/);
    expect(e).toMatchObject({ field: 'crypt_method', offset: 32 });
  });

  it('corrupt or truncated headers give typed errors naming field and offset', async () => {
    const q = await make('c.qcow2', 'qcow2', '');
    // l1_size 0x40000000: far over QEMU's 32 MiB L1 limit.
    let e = await refused({ image: patched(q, 'l1.qcow2', 36, [0x40, 0, 0, 0]), size: '+1G' }, CorruptImageError, /l1_size/);
    expect(e).toMatchObject({ field: 'l1_size', offset: 36 });
    // The L1 table pointing past the end of the file.
    e = await refused({ image: patched(q, 'l1off.qcow2', 40, [0, 0, 0, 1, 0, 0, 0, 0]), size: '+1G' }, CorruptImageError, /past the end/);
    expect(e).toMatchObject({ field: 'l1_table_offset', offset: 40 });
    const cut = join(dir, 'cut.qcow2');
    writeFileSync(cut, readFileSync(q).subarray(0, 60));
    e = await refused({ image: cut, size: '+1M', format: 'qcow2' }, TruncatedImageError, /it needs 72 bytes/);
    expect(e.offset).toBe(0);

    const v = await make('c.vhd', 'vhd', '');
    // Dynamic header (at 512) max_table_entries (offset 28) set to 0x7fffffff; the checksum then fails first, which is also typed.
    e = await refused({ image: patched(v, 'bat.vhd', 512 + 28, [0x7f, 0xff, 0xff, 0xff]), size: '+1M', format: 'vhd' }, CorruptImageError, /checksum/);
    expect(e).toMatchObject({ field: 'checksum', offset: 512 + 36 });

    const d = await make('c.vdi', 'vdi', '');
    // blocks_in_image (0x180) = 0x7fffffff: over the 2 GiB map limit.
    e = await refused({ image: patched(d, 'blocks.vdi', 0x180, [0xff, 0xff, 0xff, 0x7f]), size: '+1M' }, CorruptImageError, /blocksInImage/);
    expect(e).toMatchObject({ field: 'blocksInImage', offset: 0x180 });
    const cutVdi = join(dir, 'cut.vdi');
    writeFileSync(cutVdi, readFileSync(d).subarray(0, 300));
    await refused({ image: cutVdi, size: '+1M', format: 'vdi' }, TruncatedImageError, /too small for a VDI header/);
  });
});

describeOracle('resize refusals for qcow2 features (images by qemu-img)', () => {
  const dir = workDir('resize-refuse-q');

  it('v2 with internal snapshots, as qemu-img refuses it', async () => {
    const image = await makeImage(dir, 'v2snap.qcow2', 'qcow2', contentFor(MiB, 3), 'compat=0.10', 'qemu');
    qemuImg('snapshot', '-c', 's1', image);
    await refused({ image, size: '+1M' }, UnsupportedFeatureError, /v2 image which has snapshots/);
  });

  it('an external data file', async () => {
    const image = join(dir, 'ext.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', `data_file=${join(dir, 'ext.raw')}`, image, '1M');
    await refused({ image, size: '+1M' }, UnsupportedFeatureError, /external data file/);
  });

  it('a backing image larger than the image: growing would uncover it; the backing file is not touched', async () => {
    const base = await makeImage(dir, 'big.qcow2', 'qcow2', contentFor(4 * MiB, 5), '', 'qemu');
    const top = join(dir, 'small-top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'big.qcow2', '-F', 'qcow2', top, String(MiB));
    const baseHash = sha256File(base);
    await refused({ image: top, size: '+1M' }, UnsupportedFeatureError, /backing image .* is larger/);
    expect(sha256File(base)).toBe(baseHash);
  });

  it('a bitmap-carrying image (persistent dirty bitmap)', async () => {
    const image = join(dir, 'bm.qcow2');
    qemuImg('create', '-f', 'qcow2', image, '1M');
    qemuImg('bitmap', '--add', image, 'b0');
    await refused({ image, size: '+1M' }, UnsupportedFeatureError, /bitmaps/);
  });

  it('guestkit-made images refuse the same way (convert keeps v2)', async () => {
    const raw = join(dir, 's.raw');
    writeFileSync(raw, contentFor(MiB, 9));
    const image = join(dir, 'ours-v2.qcow2');
    await convert({ source: raw, output: image, format: 'qcow2', options: 'compat=0.10', durable: false });
    qemuImg('snapshot', '-c', 's1', image);
    await refused({ image, size: '2M' }, UnsupportedFeatureError, /snapshots/);
  });
});
