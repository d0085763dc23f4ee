/**
 * Features beyond the matrix, against qemu-img: external data files, persistent bitmaps, the
 * dirty bit of a crashed lazy-refcounts image, the corrupt bit, and `guestkit info --output json`
 * end to end.
 */
import { beforeAll, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { guestkit } from '../helpers/cli.js';
import { openImage } from '../../src/formats/open.js';
import { toQemuInfo } from '../../src/api/info.js';
import { ConfinementError, UnsupportedFeatureError } from '../../src/errors.js';
import { mergeRuns, ourCheck, ourExtents, qemuCheck, qemuInfo, qemuRaw, qemuRuns, readAll } from './helpers.js';

async function infoOf(path: string) {
  const r = await openImage(path);
  try {
    return toQemuInfo(path, r.info());
  } finally {
    await r.close();
  }
}

describeOracle('qcow2 features against qemu-img', () => {
  const dir = workDir('qcow2-features');
  beforeAll(() => mkdirSync(join(dir, 'sub')));

  it('an external data file (data_file, data_file_raw): read, map, info and check as qemu-img', async () => {
    for (const raw of ['off', 'on']) {
      const path = join(dir, `ext-${raw}.qcow2`);
      // qemu-img creates a relative data file name relative to its working directory: name it absolutely.
      qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, `ext-${raw}.data`)},data_file_raw=${raw}`, path, '4M');
      qemuIo('qcow2', path, 'write -P 0x5a 64k 128k', 'write -z 1M 64k', 'write -P 0x5b 3M 4k');
      expect(Buffer.compare(await readAll(path), qemuRaw(dir, path))).toBe(0);
      expect(mergeRuns(await ourExtents(path))).toEqual(qemuRuns(path));
      expect((await infoOf(path))['format-specific']).toEqual(qemuInfo(path)['format-specific']);
      const q = qemuCheck(path);
      const ours = await ourCheck(path);
      expect([ours.corruptions, ours.leaks, ours.messages]).toEqual([q.json.corruptions ?? 0, q.json.leaks ?? 0, q.lines]);
      const r = await openImage(path);
      expect(r.files()).toContain(join(dir, `ext-${raw}.data`));
      await r.close();
    }
  });

  it('an external data file outside the folder is refused by default', async () => {
    const path = join(dir, 'sub', 'ext-out.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'outside.data')}`, path, '1M');
    await expect(openImage(path)).rejects.toBeInstanceOf(ConfinementError);
    expect((await readAll(path, { allowOutside: true })).length).toBe(1024 * 1024);
  });

  it('persistent bitmaps are listed as qemu-img info lists them', async () => {
    const path = join(dir, 'bitmaps.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', path, '4M');
    qemuImg('bitmap', '--add', path, 'first');
    qemuImg('bitmap', '--add', '-g', '4k', '--disable', path, 'second');
    expect((await infoOf(path))['format-specific']).toEqual(qemuInfo(path)['format-specific']);
  });

  it('a crashed lazy-refcounts image: dirty flag reported, data read, check agrees with qemu-img', async () => {
    const path = join(dir, 'dirty.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '4M');
    // `abort` ends qemu-io without closing the image, as a crash would: the dirty bit stays set.
    spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x31 0 128k', '-c', 'write -P 0x32 1M 64k', '-c', 'abort', path], { stdio: 'ignore' });
    const q = qemuInfo(path);
    expect(q['dirty-flag']).toBe(true);
    const ours = await infoOf(path);
    expect(ours['dirty-flag']).toBe(true);
    expect(ours.warnings?.join(' ')).toMatch(/dirty/);
    expect(Buffer.compare(await readAll(path), qemuRaw(dir, path))).toBe(0);
    const c = qemuCheck(path);
    const oc = await ourCheck(path);
    expect([oc.corruptions, oc.leaks, oc.messages]).toEqual([c.json.corruptions ?? 0, c.json.leaks ?? 0, c.lines]);
  });

  it('the corrupt bit: read-only use still works, and info says so', async () => {
    const path = join(dir, 'corrupt.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', path, '4M');
    qemuIo('qcow2', path, 'write -P 0x41 0 64k');
    const bytes = new Uint8Array(readFileSync(path));
    bytes[79] |= 2; // incompatible_features bit 1
    writeFileSync(path, bytes);
    const q = qemuInfo(path);
    const ours = await infoOf(path);
    expect(ours['format-specific']).toEqual(q['format-specific']);
    expect(ours.warnings?.join(' ')).toMatch(/corrupt/);
    expect(Buffer.compare(await readAll(path), qemuRaw(dir, path))).toBe(0);
  });

  it('encrypted images made by qemu-img (LUKS and legacy AES) are refused: "encrypted images are not supported"', async () => {
    for (const format of ['luks', 'aes']) {
      const path = join(dir, `${format}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '--object', 'secret,id=sec0,data=abc', '-o', `encrypt.format=${format},encrypt.key-secret=sec0${format === 'luks' ? ',encrypt.iter-time=200' : ''}`, path, '1M');
      const err = await openImage(path).catch((e) => e);
      expect(err).toBeInstanceOf(UnsupportedFeatureError);
      expect(err.message).toMatch(/encrypted images are not supported/);
      expect(err.message).toMatch(format === 'luks' ? /LUKS/ : /AES/);
      await expect(ourCheck(path)).rejects.toBeInstanceOf(UnsupportedFeatureError);
    }
  });

  it('an unknown incompatible feature is refused, naming the bit (qemu-img refuses it too)', async () => {
    const path = join(dir, 'future.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', path, '4M');
    const bytes = new Uint8Array(readFileSync(path));
    bytes[79] |= 1 << 6;
    writeFileSync(path, bytes);
    expect(spawnSync('qemu-img', ['info', path]).status).not.toBe(0);
    const err = await openImage(path).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.message).toMatch(/incompatible feature bit 6/);
  });

  it('guestkit info --output json agrees with qemu-img info --output=json', () => {
    const base = join(dir, 'cli-base.qcow2');
    const top = join(dir, 'cli-top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4k', base, '4M');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', '-b', 'cli-base.qcow2', '-F', 'qcow2', top, '6M');
    const r = guestkit(['info', '--output', 'json', top]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const ours = JSON.parse(r.stdout);
    const q = qemuInfo(top);
    for (const key of ['format', 'virtual-size', 'cluster-size', 'backing-filename', 'full-backing-filename', 'backing-filename-format', 'dirty-flag', 'format-specific']) {
      expect([key, ours[key]]).toEqual([key, q[key]]);
    }
  });

  it('guestkit map, check and create agree with qemu-img map, check and create', () => {
    const base = join(dir, 'cli2-base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '4M');
    qemuIo('qcow2', base, 'write -P 0x11 0 128k', 'write -z 1M 64k', 'write -c -P 0x12 2M 64k');
    const overlay = join(dir, 'cli2-overlay.qcow2');
    const made = guestkit(['create', '-f', 'qcow2', '-b', 'cli2-base.qcow2', '-F', 'qcow2', overlay, '6M']);
    expect(made.status).toBe(0);
    expect(qemuCheck(overlay).status).toBe(0);
    qemuIo('qcow2', overlay, 'write -P 0x13 64k 64k');
    const map = guestkit(['map', '--output', 'json', overlay]);
    expect(map.status).toBe(0);
    expect(JSON.parse(map.stdout)).toEqual(JSON.parse(qemuImg('map', '--output=json', overlay)));

    // A leak and a double reference, injected.
    const bytes = new Uint8Array(readFileSync(base));
    const dv = new DataView(bytes.buffer);
    const l2 = Number(dv.getBigUint64(Number(dv.getBigUint64(40))) & 0x00fffffffffffe00n);
    dv.setBigUint64(l2 + 8, dv.getBigUint64(l2));
    const damaged = join(dir, 'cli2-damaged.qcow2');
    writeFileSync(damaged, bytes);
    const q = qemuCheck(damaged);
    const ours = guestkit(['check', '--output', 'json', damaged]);
    expect(ours.status).toBe(q.status);
    const j = JSON.parse(ours.stdout);
    for (const k of ['corruptions', 'leaks', 'check-errors', 'image-end-offset', 'total-clusters', 'allocated-clusters']) {
      expect([k, j[k] ?? 0]).toEqual([k, q.json[k] ?? 0]);
    }
    expect(q.json.corruptions).toBeGreaterThan(0);
    expect(q.json.leaks).toBeGreaterThan(0);
  });
});
