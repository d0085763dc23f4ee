/**
 * VHDX against qemu-img 7.2: qemu's images (every block size, fixed, block_state_zero=off) read
 * byte for byte as `qemu-img convert -O raw` reads them; a pending log reads as qemu-img reads a
 * copy after `check -r all`, and the file is not changed; images we write pass `qemu-img check`
 * and compare identical; differencing children (which qemu cannot open) read through their parent.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { checkImage } from '../../src/api/check.js';
import { convert } from '../../src/api/convert.js';
import { detectFormat } from '../../src/api/info.js';
import { ConfinementError, CorruptImageError, TruncatedImageError, UnsupportedFeatureError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { crc32c } from '../../src/formats/shared/crc32c.js';
import { HEADER_OFFSETS, REGION_TABLE_OFFSETS } from '../../src/formats/vhdx/layout.js';
import { describeOracle, expectQemuCheckClean, qemuImg, qemuImgStatus, qemuInfoJson, qemuIo } from '../helpers/oracle.js';
import { pseudoRandom, readImage, sha256File, workDir } from '../helpers/work.js';
import { addPendingLog, buildChild, dataWriteGuidOf } from './build.js';

const MiB = 1024 * 1024;
const dir = workDir('vhdx');

function qemuVhdx(name: string, size: string, opts: string): string {
  const p = join(dir, name);
  qemuImg('create', '-q', '-f', 'vhdx', ...(opts ? ['-o', opts] : []), p, size);
  qemuIo('vhdx', p, 'write -P 0x5a 0 300k', 'write -P 0x33 3M 2M', 'write -P 0x77 9M 64k', 'write -z 3M 4k');
  return p;
}

function qemuRaw(p: string): Buffer {
  const out = `${p}.qemu.raw`;
  qemuImg('convert', '-f', 'vhdx', '-O', 'raw', p, out);
  return readFileSync(out);
}

describeOracle('VHDX read as qemu-img reads it', () => {
  const cases: Array<[string, string]> = [
    ['default', ''],
    ['block 1 MiB', 'block_size=1M'],
    ['block 32 MiB', 'block_size=32M'],
    ['block 256 MiB', 'block_size=256M'],
    ['fixed', 'subformat=fixed'],
    ['no zero state', 'block_state_zero=off,log_size=2M'],
  ];
  for (const [label, opts] of cases) {
    it(`${label}: same bytes, size and cluster size as qemu-img`, async () => {
      const p = qemuVhdx(`q-${label.replace(/\W/g, '')}.vhdx`, '12M', opts);
      expect(Buffer.compare(await readImage(p), qemuRaw(p))).toBe(0);
      const r = await openImage(p);
      const info = r.info();
      await r.close();
      const q = qemuInfoJson(p, 'vhdx');
      expect(info.virtualSize).toBe(q['virtual-size']);
      expect(info.clusterSize).toBe(q['cluster-size']);
      expect((await detectFormat(p))!.subformat).toBe(opts.includes('fixed') ? 'fixed' : 'dynamic');
      expect((await checkImage(p))!.corruptions).toBe(0);
    });
  }

  it('a damaged current header is a warning: the other header is used', async () => {
    const p = qemuVhdx('damaged-header.vhdx', '12M', '');
    const expected = qemuRaw(p);
    const buf = readFileSync(p);
    for (const at of HEADER_OFFSETS) buf[at + 100] ^= 0xff; // both are damaged: refused
    writeFileSync(join(dir, 'both.vhdx'), buf);
    await expect(openImage(join(dir, 'both.vhdx'))).rejects.toBeInstanceOf(CorruptImageError);
    buf[HEADER_OFFSETS[0] + 100] ^= 0xff; // header 1 repaired, header 2 still bad
    writeFileSync(p, buf);
    const r = await openImage(p);
    expect(r.info().warnings?.join()).toMatch(/header 2 .* damaged/);
    await r.close();
    expect(Buffer.compare(await readImage(p), expected)).toBe(0);
  });

  it('refuses an unknown required region, and a BAT entry past the end of the file', async () => {
    const p = qemuVhdx('regions.vhdx', '12M', '');
    const buf = readFileSync(p);
    for (const at of REGION_TABLE_OFFSETS) {
      // A third entry: an unknown GUID with the Required flag.
      buf.writeUInt32LE(3, at + 8);
      buf.fill(0xab, at + 16 + 64, at + 16 + 80);
      buf.writeBigUInt64LE(BigInt(8 * MiB), at + 16 + 80);
      buf.writeUInt32LE(MiB, at + 16 + 88);
      buf.writeUInt32LE(1, at + 16 + 92);
      buf.writeUInt32LE(0, at + 4);
      buf.writeUInt32LE(crc32c(buf.subarray(at, at + 65536), 4), at + 4);
    }
    writeFileSync(join(dir, 'unknown-region.vhdx'), buf);
    await expect(openImage(join(dir, 'unknown-region.vhdx'))).rejects.toBeInstanceOf(UnsupportedFeatureError);

    const b2 = readFileSync(p);
    const r = await openImage(p);
    const bat = Number((r.info().formatSpecific as Record<string, number>)['bat-offset']);
    await r.close();
    b2.writeBigUInt64LE((BigInt(4096) << 20n) | 6n, bat); // block 0 FULLY_PRESENT at 4 GiB
    writeFileSync(join(dir, 'bat-past-end.vhdx'), b2);
    const bad = await openImage(join(dir, 'bat-past-end.vhdx'));
    await expect(bad.read(0, 512)).rejects.toBeInstanceOf(TruncatedImageError);
    await bad.close();
    expect((await checkImage(join(dir, 'bat-past-end.vhdx')))!.corruptions).toBeGreaterThan(0);
  });

  it('a pending log reads as qemu-img reads a copy after check -r all, and the file is untouched', async () => {
    const p = qemuVhdx('log.vhdx', '12M', 'block_size=1M');
    const r = await openImage(p);
    const spec = r.info().formatSpecific as Record<string, number>;
    await r.close();
    // BAT entry 0's page: block 0 re-pointed at block 3's data (a metadata change, as a host logs it).
    const buf = readFileSync(p);
    const page = new Uint8Array(buf.subarray(spec['bat-offset'], spec['bat-offset'] + 4096));
    const entry3 = Buffer.from(page).readBigUInt64LE(3 * 8);
    Buffer.from(page.buffer, page.byteOffset).writeBigUInt64LE(entry3, 0);
    // A data sector into block 9's payload, and zeros over 8 KiB of block 3's.
    const block9 = Number(Buffer.from(page).readBigUInt64LE(9 * 8) >> 20n) * MiB;
    const block3 = Number(entry3 >> 20n) * MiB;
    addPendingLog(p, [{ fileOffset: spec['bat-offset'], data: page }, { fileOffset: block9 + 8192, data: pseudoRandom(4096, 9) }, { fileOffset: block3 + 4096, zeroLength: 8192 }]);
    const before = sha256File(p);
    expect(qemuImgStatus('convert', '-U', '-f', 'vhdx', '-O', 'raw', p, join(dir, 'x.raw')).status).not.toBe(0);
    const ours = await readImage(p);
    expect(sha256File(p)).toBe(before);
    const copy = join(dir, 'log-copy.vhdx');
    copyFileSync(p, copy);
    qemuImgStatus('check', '-r', 'all', '-f', 'vhdx', copy);
    expect(Buffer.compare(ours, qemuRaw(copy))).toBe(0);
    const c = await checkImage(p);
    expect(c!.messages.join('\n')).toMatch(/pending/);
    const rr = await openImage(p);
    expect((rr.info().formatSpecific as Record<string, unknown>)['log-pending']).toBe(true);
    await rr.close();
  });
});

describeOracle('VHDX written by guestkit, judged by qemu-img', () => {
  const size = 40 * MiB + 4096;
  const source = join(dir, 'src.raw');
  const data = new Uint8Array(size);
  data.set(pseudoRandom(3 * MiB, 1), 0);
  data.set(pseudoRandom(100_000, 2), 17 * MiB - 5000);
  data.set(pseudoRandom(4096, 3), size - 4096);
  writeFileSync(source, data);
  for (const opts of ['', 'subformat=fixed', 'block_size=1M', 'block_size=256M,log_size=4M', 'block_state_zero=off']) {
    it(`-o ${opts || '(defaults)'}: qemu-img check is clean and compare finds the source`, async () => {
      const out = join(dir, `ours-${opts.replace(/\W/g, '')}.vhdx`);
      await convert({ source, output: out, format: 'vhdx', options: opts, force: true, durable: false });
      expectQemuCheckClean(out, 'vhdx');
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', 'vhdx', source, out);
      expect(cmp.status, cmp.stdout + cmp.stderr).toBe(0);
      expect(Buffer.compare(await readImage(out), Buffer.from(data))).toBe(0);
      // Every structure is 1 MiB aligned, as Hyper-V lays it out.
      const r = await openImage(out);
      const s = r.info().formatSpecific as Record<string, number>;
      await r.close();
      for (const k of ['log-offset', 'bat-offset', 'metadata-offset']) expect(s[k] % MiB).toBe(0);
    });
  }

  it('logical_sector_size=4096: our reader reads it back; qemu-img 7.2 refuses 4Kn VHDX outright', async () => {
    const out = join(dir, 'ours-4k.vhdx');
    await convert({ source, output: out, format: 'vhdx', options: 'logical_sector_size=4096,block_size=1M', force: true, durable: false });
    expect(Buffer.compare(await readImage(out), Buffer.from(data))).toBe(0);
    const r = await openImage(out);
    expect((r.info().formatSpecific as Record<string, number>)['logical-sector-size']).toBe(4096);
    await r.close();
    expect(qemuImgStatus('info', '-f', 'vhdx', out).stderr).toMatch(/not supported/i);
  });
});

describeOracle('differencing VHDX read through its parent', () => {
  const parent = join(dir, 'parent.vhdx');
  const expected = () => {
    const base = qemuRaw(parent);
    return new Uint8Array(base);
  };

  it('full, partial (sector bitmap) and zero blocks over a qemu-made parent', async () => {
    qemuImg('create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', parent, '8M');
    qemuIo('vhdx', parent, 'write -P 0x11 0 8M');
    const want = expected();
    const full = pseudoRandom(MiB, 5);
    const partial = pseudoRandom(MiB, 6);
    const sectors = [0, 1, 7, 100, 2047];
    buildChild(join(dir, 'child.avhdx'), {
      virtualSize: 8 * MiB,
      blockSize: MiB,
      locator: [
        ['parent_linkage', `{${dataWriteGuidOf(parent)}}`],
        ['relative_path', '.\\parent.vhdx'],
        ['absolute_win32_path', 'C:\\VMs\\parent.vhdx'],
      ],
      blocks: [
        { block: 1, kind: 'full', data: full },
        { block: 3, kind: 'partial', data: partial, sectors },
        { block: 5, kind: 'zero' },
      ],
    });
    want.set(full, MiB);
    for (const s of sectors) want.set(partial.subarray(s * 512, s * 512 + 512), 3 * MiB + s * 512);
    want.fill(0, 5 * MiB, 6 * MiB);
    const child = join(dir, 'child.avhdx');
    expect(Buffer.compare(await readImage(child), Buffer.from(want))).toBe(0);
    expect((await detectFormat(child))!.subformat).toBe('differencing');
    const r = await openImage(child);
    expect(r.info().backingFile).toBe('.\\parent.vhdx');
    const depths = [];
    for await (const e of r.extents(3 * MiB, 4 * MiB)) depths.push([e.offset - 3 * MiB, e.depth]);
    await r.close();
    expect(depths.slice(0, 2)).toEqual([
      [0, 0],
      [1024, 1],
    ]);
  });

  it('refuses a parent whose DataWriteGuid is not the parent_linkage, and a parent outside the folder', async () => {
    const locator = (path: string, guid: string): Array<[string, string]> => [
      ['parent_linkage', `{${guid}}`],
      ['relative_path', path],
    ];
    buildChild(join(dir, 'wrong.avhdx'), { virtualSize: 8 * MiB, blockSize: MiB, locator: locator('parent.vhdx', '01234567-89ab-cdef-0123-456789abcdef'), blocks: [] });
    await expect(openImage(join(dir, 'wrong.avhdx'))).rejects.toBeInstanceOf(CorruptImageError);
    buildChild(join(dir, 'outside.avhdx'), { virtualSize: 8 * MiB, blockSize: MiB, locator: locator('..\\..\\etc\\parent.vhdx', dataWriteGuidOf(parent)), blocks: [] });
    await expect(openImage(join(dir, 'outside.avhdx'))).rejects.toBeInstanceOf(ConfinementError);
  });
});

describeOracle('VHDX resize (grow), judged by qemu-img', () => {
  const cases: Array<[string, string, string]> = [
    ['dynamic, BAT grows in place', 'block_size=1M', '3G'],
    ['dynamic, BAT moves to the end of the file', 'block_size=1M', '200G'],
    ['fixed, new blocks appended', 'subformat=fixed,block_size=1M', '40M'],
  ];
  for (const [label, opts, size] of cases) {
    it(`${label}: qemu-img check is clean, the data stays and the rest reads as zeros`, async () => {
      const p = qemuVhdx(`resize-${label.replace(/\W/g, '')}.vhdx`, '12M', opts);
      const before = join(dir, `resize-${label.replace(/\W/g, '')}.raw`);
      qemuImg('convert', '-f', 'vhdx', '-O', 'raw', p, before);
      const { resize } = await import('../../src/api/resize.js');
      const r = await resize({ image: p, size });
      expect(r.newSize).toBeGreaterThan(r.oldSize);
      expectQemuCheckClean(p, 'vhdx');
      expect(qemuInfoJson(p, 'vhdx')['virtual-size']).toBe(r.newSize);
      // compare checks that the larger image reads as zeros past the smaller one's end.
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', 'vhdx', before, p);
      expect(cmp.status, cmp.stdout + cmp.stderr).toBe(0);
      expect((await checkImage(p))!.corruptions).toBe(0);
    });
  }
});
