/**
 * Messages a user can act on: a file opened as the wrong format says what it looks like; a corrupt
 * 64-bit field is named as the spec names it and the image called corrupt; an unknown output
 * format lists what can be written; a URL given as a path says URLs are not supported.
 */
import { copyFileSync, openSync, closeSync, readFileSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkImage } from '../../src/api/check.js';
import { convert } from '../../src/api/convert.js';
import { createImage } from '../../src/api/create.js';
import { compareImages } from '../../src/api/compare.js';
import { imageInfo } from '../../src/api/info.js';
import { measure } from '../../src/api/measure.js';
import { resize } from '../../src/api/resize.js';
import { CorruptImageError, TruncatedImageError, UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { QCOW2_HEADER_V3 } from '../../src/formats/qcow2/layout.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('errors');
const raw = join(dir, 'src.raw');
const qcow = join(dir, 'src.qcow2');
const vhd = join(dir, 'src.vhd');

beforeAll(async () => {
  const data = new Uint8Array(4 * 1024 * 1024);
  data.set(pseudoRandom(3 * 1024 * 1024, 9), 1024 * 1024);
  writeFileSync(raw, data);
  await convert({ source: raw, output: qcow, format: 'qcow2' });
  await convert({ source: raw, output: vhd, format: 'vhd' });
});

async function failure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

describe('a file opened as the wrong format says what it is', () => {
  it('-f vmdk on a qcow2 image (a 4.5 MB qcow2 once read as "too large for a VMDK descriptor")', async () => {
    const e = await failure(openImage(qcow, { format: 'vmdk' }));
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e.message).toBe(`${qcow}: not a vmdk image: it looks like a qcow2 (v3) image; leave out -f, or give -f qcow2`);
  });

  it('for every named format that is not the file', async () => {
    for (const [file, wrong, looks] of [
      [qcow, 'vhd', 'qcow2'],
      [qcow, 'vdi', 'qcow2'],
      [vhd, 'qcow2', 'vhd'],
      [vhd, 'vmdk', 'vhd'],
    ] as const) {
      const e = await failure(openImage(file, { format: wrong }));
      expect(e.message, `${wrong} on ${looks}`).toMatch(new RegExp(`not a ${wrong} image: it looks like a ${looks}\\b.*-f ${looks}$`));
    }
    const e = await failure(openImage(raw, { format: 'qcow2' }));
    expect(e.message).toMatch(/not a qcow2 image: it has no signature of any format guestkit knows \(raw data\?\); leave out -f to read it as raw$/);
  });

  it('check and resize with a wrong -f refuse before parsing (a vdi check once called a qcow2 "corrupt")', async () => {
    const copy = join(dir, 'resize-me.qcow2');
    copyFileSync(qcow, copy);
    const before = readFileSync(copy);
    for (const p of [() => checkImage(qcow, { format: 'vdi' }), () => checkImage(qcow, { format: 'vmdk' }), () => resize({ image: copy, size: '+1M', format: 'vdi' }), () => resize({ image: copy, size: '+1M', format: 'vhd' })]) {
      const e = await failure(p);
      expect(e).toBeInstanceOf(CorruptImageError);
      expect(e.message).toMatch(/: not a (vdi|vmdk|vhd) image: it looks like a qcow2 \(v3\) image; leave out -f, or give -f qcow2$/);
    }
    expect(readFileSync(copy).equals(before)).toBe(true);
  });

  it('a damaged image of the named format keeps its own precise message', async () => {
    const bad = join(dir, 'short.qcow2');
    copyFileSync(qcow, bad);
    const fd = openSync(bad, 'r+');
    // cluster_bits 5: still a qcow2 (magic intact), but invalid.
    writeSync(fd, Uint8Array.of(0, 0, 0, 5), 0, 4, 20);
    closeSync(fd);
    const e = await failure(openImage(bad, { format: 'qcow2' }));
    expect(e.message).toMatch(/cluster_bits 5 is below the minimum/);
  });
});

describe('corrupt 64-bit fields', () => {
  it('names the field as the spec does and says the image is corrupt', async () => {
    const bad = join(dir, 'bad-l1.qcow2');
    copyFileSync(qcow, bad);
    const fd = openSync(bad, 'r+');
    writeSync(fd, new Uint8Array(8).fill(0xff), 0, 8, QCOW2_HEADER_V3.offsetOf('l1TableOffset'));
    closeSync(fd);
    const e = await failure(imageInfo(bad));
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e.message).toBe(
      `${bad}: the image is corrupt: qcow2 header field l1_table_offset is 18446744073709551615, larger than any size or offset an image can have (2^53) (field l1_table_offset, offset 40)`,
    );
  });

  it('a truncated header says the file ends inside it', async () => {
    const bad = join(dir, 'cut.qcow2');
    writeFileSync(bad, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.from([0, 0, 0, 3]), Buffer.alloc(40)]));
    const e = await failure(openImage(bad));
    expect(e).toBeInstanceOf(TruncatedImageError);
    expect(e.message).toMatch(/the file ends inside the qcow2 header: it needs \d+ bytes, only 48 are there/);
  });
});

describe('output formats', () => {
  const list = 'formats guestkit can write: qcow2, vmdk, vhd (vpc), vdi, vhdx, raw; it reads but cannot write qcow';
  it('an unknown one lists the formats that can be written, and those only read', async () => {
    for (const p of [() => convert({ source: raw, output: join(dir, 'x.q3'), format: 'qcow3' }), () => createImage({ format: 'qcow3', path: join(dir, 'y'), size: 1 << 20 }), () => measure({ format: 'qcow3', size: 1 << 20 })]) {
      const e = await failure(p);
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(`unknown output format 'qcow3'; ${list}`);
    }
  });

  it('a qemu-img format we lack is called known, not unknown', async () => {
    const e = await failure(convert({ source: raw, output: join(dir, 'x.qed'), format: 'qed' }));
    expect(e.message).toMatch(/^unknown output format 'qed' \(QEMU Enhanced Disk, a qemu-img format guestkit does not support\); formats guestkit can write/);
  });

  it('a read-only one, named or implied by the extension, says it is read only', async () => {
    for (const p of [() => convert({ source: raw, output: join(dir, 'x.qcow') }), () => convert({ source: raw, output: join(dir, 'x.img'), format: 'qcow' }), () => createImage({ format: 'qcow', path: join(dir, 'z'), size: 1 << 20 })]) {
      const e = await failure(p);
      expect(e).toBeInstanceOf(UnsupportedFeatureError);
      expect(e.message).toMatch(/^(\S+: )?writing qcow images is not supported \(guestkit only reads them\); formats guestkit can write: /);
    }
  });
});

describe('URLs given as paths', () => {
  const urls = ['http://example.com/disk.qcow2', 'https://example.com/disk.vmdk', 'nbd://localhost:10809/disk', 'ssh://host/images/disk.qcow2', 'json:{"file.driver":"http"}'];
  it('are refused as URLs by every command, as sources and as outputs', async () => {
    for (const url of urls) {
      for (const p of [
        () => imageInfo(url),
        () => openImage(url),
        () => convert({ source: url, output: join(dir, 'u.raw') }),
        () => measure({ format: 'qcow2', source: url }),
        () => compareImages(raw, url),
        () => resize({ image: url, size: '2G' }),
      ]) {
        const e = await failure(p);
        expect(e, url).toBeInstanceOf(UnsupportedFeatureError);
        expect(e.message).toBe(`image '${url}' is a URL: guestkit reads and writes local files only (URLs are not supported yet); copy the image to a local file first`);
      }
      for (const p of [() => convert({ source: raw, output: url }), () => createImage({ format: 'qcow2', path: url, size: 1 << 20 })]) {
        const e = await failure(p);
        expect(e.message).toBe(`output '${url}' is a URL: guestkit reads and writes local files only (URLs are not supported yet); write a local file, then copy it`);
      }
    }
  });

  it('a file:// URL gets its plain path back', async () => {
    const e = await failure(imageInfo(`file://${raw}`));
    expect(e.message).toBe(`image 'file://${raw}' is a file:// URL; give the plain path (${raw}) instead`);
  });
});
