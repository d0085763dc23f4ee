/**
 * Every VMDK we write passes `qemu-img check`, equals its source under `qemu-img compare`, opens
 * in vmdkinfo (libvmdk, an independent reader) and reads back through our own reader. The
 * streamOptimized output has VMware's layout and streams to a pipe.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { convert } from '../../src/api/convert.js';
import { UsageError } from '../../src/errors.js';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { describeOracle, describeWithTool, qemuImg, qemuImgStatus, qemuIo } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { expectSameAsRaw, KiB, MiB, mixedRegions, openVmdk, writeRaw } from './helpers.js';
import { walkStream } from './stream-layout.js';

const VMDKINFO = spawnSync('sh', ['-c', 'command -v vmdkinfo'], { encoding: 'utf8' }).status === 0;
const SIZE = 40 * MiB + 12 * KiB;
const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
const ADAPTERS = ['ide', 'lsilogic'] as const;

function qemuCheckClean(path: string): void {
  const r = qemuImgStatus('check', '-f', 'vmdk', path);
  expect(r.stdout + r.stderr).toMatch(/No errors were found on the image/);
  expect(r.status).toBe(0);
}

function qemuSame(raw: string, img: string): void {
  const r = qemuImgStatus('compare', '-f', 'raw', '-F', 'vmdk', raw, img);
  expect(r.stdout + r.stderr).toMatch(/Images are identical/);
  expect(r.status).toBe(0);
}

describeOracle('VMDK images we write pass qemu-img check and compare', () => {
  const dir = workDir('vmdk-write');
  const src = join(dir, 'src.raw');
  writeRaw(src, SIZE, mixedRegions(SIZE));

  for (const sub of SUBFORMATS) {
    for (const adapter of ADAPTERS) {
      it(`${sub}, adapter ${adapter}`, async () => {
        const out = join(dir, `${sub}-${adapter}.vmdk`);
        await convert({ source: src, output: out, format: 'vmdk', options: { subformat: sub, adapter_type: adapter }, durable: false });
        qemuCheckClean(out);
        qemuSame(src, out);
        const q = JSON.parse(qemuImg('info', '--output=json', out));
        expect(q['format-specific'].data['create-type']).toBe(sub);
        expect(q['virtual-size']).toBe(SIZE);
        const r = await openVmdk(out);
        try {
          await expectSameAsRaw(r, src);
          expect(r.info().formatSpecific!['adapter-type']).toBe(adapter);
        } finally {
          await r.close();
        }
      });
    }
  }

  it('split subformats past 2 GiB write several extents, with data across their boundary', async () => {
    // A sparse source, so that only its data is read.
    const big = join(dir, 'big-src.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', big, `${4 * 1024 + 1}M`);
    qemuIo('vmdk', big, 'write -P 0x11 0 64k', `write -P 0x22 ${2 * 1024 * MiB - 64 * KiB} 192k`, `write -P 0x33 ${4 * 1024 * MiB} 1M`);
    for (const s of ['twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
      const out = join(dir, `big-${s}.vmdk`);
      await convert({ source: big, output: out, format: 'vmdk', options: { subformat: s }, durable: false });
      expect(existsSync(out.replace('.vmdk', s.endsWith('Sparse') ? '-s003.vmdk' : '-f003.vmdk'))).toBe(true);
      qemuCheckClean(out);
      const r = qemuImgStatus('compare', '-f', 'vmdk', '-F', 'vmdk', big, out);
      expect(r.stdout + r.stderr).toMatch(/Images are identical/);
      const extents = JSON.parse(qemuImg('info', '--output=json', out))['format-specific'].data.extents as Array<Record<string, number>>;
      expect(extents.map((e) => e['virtual-size'])).toEqual([2 * 1024 * MiB, 2 * 1024 * MiB, MiB]);
    }
  });

  it('extent files are named as qemu-img names them and the descriptor file is only text', async () => {
    const sub = join(dir, 'names');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    for (const s of ['monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
      await convert({ source: src, output: join(sub, `${s}.vmdk`), format: 'vmdk', options: { subformat: s }, durable: false });
    }
    expect(readdirSync(sub).sort()).toEqual([
      'monolithicFlat-flat.vmdk',
      'monolithicFlat.vmdk',
      'twoGbMaxExtentFlat-f001.vmdk',
      'twoGbMaxExtentFlat.vmdk',
      'twoGbMaxExtentSparse-s001.vmdk',
      'twoGbMaxExtentSparse.vmdk',
    ]);
    const text = readFileSync(join(sub, 'monolithicFlat.vmdk'), 'utf8');
    expect(text).toMatch(/^# Disk DescriptorFile\nversion=1\nCID=[0-9a-f]{8}\nparentCID=ffffffff\ncreateType="monolithicFlat"\n/);
    expect(text).toContain(`RW ${Math.ceil(SIZE / 512)} FLAT "monolithicFlat-flat.vmdk" 0\n`);
    expect(text).not.toContain('\0');
  });

  it('streamOptimized has the VMware layout: header v3 GD_AT_END, grain markers, GT/GD markers, footer, EOS', async () => {
    const out = join(dir, 'layout.vmdk');
    await convert({ source: src, output: out, format: 'vmdk', options: { subformat: 'streamOptimized' }, durable: false });
    const s = walkStream(readFileSync(out));
    expect(s.header.version).toBe(3);
    expect(s.header.flags).toBe(0x30001);
    expect(s.header.gdOffset).toBe(0xffffffffffffffffn);
    expect(s.header.compressAlgorithm).toBe(1);
    expect(s.footer.gdOffset).toBe(BigInt(s.gdSector));
    // Grains in increasing LBA order, each GT right after the grains of its span, then GD, footer, EOS.
    expect(s.sequence.at(-3)).toBe('GD');
    expect(s.sequence.at(-2)).toBe('FOOTER');
    expect(s.sequence.at(-1)).toBe('EOS');
    expect(s.eosAt).toBe(s.size - 512);
    expect(s.grainLbas).toEqual([...s.grainLbas].sort((a, b) => a - b));
    expect(s.gtsAfterTheirGrains).toBe(true);
    expect(s.zlibHeaders).toBe(true);
    // Written zeros (4 MiB..5 MiB) were left out.
    expect(s.grainLbas.some((l) => l * 512 >= 4 * MiB && l * 512 < 5 * MiB)).toBe(false);
  });

  it('streamOptimized streams to a pipe (- as output) in one pass, and -c alone means streamOptimized', () => {
    const r = guestkitBinary(['convert', '-c', '-O', 'vmdk', src, '-']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = join(dir, 'piped.vmdk');
    writeFileSync(out, r.stdout);
    expect(walkStream(r.stdout).sequence.at(-1)).toBe('EOS');
    qemuCheckClean(out);
    qemuSame(src, out);
  });

  it('compression jobs (-m) change speed, not bytes', async () => {
    const a = join(dir, 'm1.vmdk');
    const b = join(dir, 'm8.vmdk');
    await convert({ source: src, output: a, format: 'vmdk', compress: true, parallelism: 1, durable: false });
    await convert({ source: src, output: b, format: 'vmdk', compress: true, parallelism: 8, durable: false });
    // Same grains and tables after the descriptor (whose CID is random).
    const x = readFileSync(a);
    const y = readFileSync(b);
    expect(x.length).toBe(y.length);
    expect(x.subarray(64 * KiB).equals(y.subarray(64 * KiB))).toBe(true);
  });

  it('a size that is not a whole sector is rounded up, as qemu-img does', async () => {
    const odd = join(dir, 'odd.raw');
    writeRaw(odd, 1_000_000, [{ at: 999_000, length: 1000, kind: 'random' }]);
    for (const s of ['monolithicSparse', 'streamOptimized']) {
      const out = join(dir, `odd-${s}.vmdk`);
      await convert({ source: odd, output: out, format: 'vmdk', options: { subformat: s }, durable: false });
      qemuCheckClean(out);
      qemuSame(odd, out);
      expect(JSON.parse(qemuImg('info', '--output=json', out))['virtual-size']).toBe(1_000_448);
    }
  });

  it('zeroed_grain=on writes a version 2 header with the zeroed-grain flag', async () => {
    const out = join(dir, 'zg.vmdk');
    await convert({ source: src, output: out, format: 'vmdk', options: { zeroed_grain: 'on', hwversion: '11' }, durable: false });
    const h = readFileSync(out);
    expect(h.readUInt32LE(4)).toBe(2);
    expect(h.readUInt32LE(8)).toBe(0x7);
    expect(h.subarray(512, 20 * 512).toString('latin1')).toContain('ddb.virtualHWVersion = "11"');
    qemuCheckClean(out);
    qemuSame(src, out);
  });

  it('creates a delta link (-b base.vmdk) that qemu-img reads through and writes into', async () => {
    const sub = join(dir, 'delta');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    qemuImg('create', '-q', '-f', 'vmdk', join(sub, 'base.vmdk'), '8M');
    qemuIo('vmdk', join(sub, 'base.vmdk'), 'write -P 0x01 0 1M');
    const r = guestkit(['create', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', join(sub, 'child.vmdk')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const q = JSON.parse(qemuImg('info', '--output=json', join(sub, 'child.vmdk')));
    const base = JSON.parse(qemuImg('info', '--output=json', join(sub, 'base.vmdk')));
    expect(q['backing-filename']).toBe('base.vmdk');
    expect(q['format-specific'].data['parent-cid']).toBe(base['format-specific'].data.cid);
    qemuIo('vmdk', join(sub, 'child.vmdk'), 'write -P 0x02 512k 64k');
    qemuCheckClean(join(sub, 'child.vmdk'));
    const reader = await openVmdk(join(sub, 'child.vmdk'));
    try {
      expect((await reader.read(0, 512 * KiB)).every((b) => b === 1)).toBe(true);
      expect((await reader.read(512 * KiB, 64 * KiB)).every((b) => b === 2)).toBe(true);
      expect((await reader.read(MiB, MiB)).every((b) => b === 0)).toBe(true);
    } finally {
      await reader.close();
    }
    const flat = guestkit(['create', '-f', 'vmdk', '-b', 'base.vmdk', '-o', 'subformat=monolithicFlat', join(sub, 'flat.vmdk')]);
    expect(flat.stderr).toMatch(/flat image cannot have a backing file/);
    const notVmdk = guestkit(['create', '-f', 'vmdk', '-b', 'src.raw', join(dir, 'bad-parent.vmdk'), '1M']);
    expect(notVmdk.stderr).toMatch(/must be a VMDK image/);
  });

  it('refuses what cannot be written, with usage errors', async () => {
    const o = (options: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      convert({ source: src, output: join(dir, `bad-${Object.keys(options).join('-')}.vmdk`), format: 'vmdk', options, durable: false, ...extra });
    await expect(o({ subformat: 'monolithicSparse' }, { compress: true })).rejects.toBeInstanceOf(UsageError);
    await expect(o({ compat6: 'on', hwversion: '7' })).rejects.toBeInstanceOf(UsageError);
    await expect(o({ subformat: 'monolithicFlat', zeroed_grain: 'on' })).rejects.toBeInstanceOf(UsageError);
    await expect(o({ adapter_type: 'scsi' })).rejects.toBeInstanceOf(UsageError);
    await expect(o({ cluster_size: '64k' })).rejects.toBeInstanceOf(UsageError);
    expect(existsSync(join(dir, 'bad-subformat.vmdk'))).toBe(false);
    const r = guestkit(['convert', '-O', 'vmdk', '-o', 'subformat=monolithicSparse', src, '-']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/streamOptimized/);
  });
});

describeWithTool('vmdkinfo', VMDKINFO, 'vmdkinfo (libvmdk) opens every VMDK we write', () => {
  const dir = workDir('vmdk-libvmdk');
  const src = join(dir, 'src.raw');
  writeRaw(src, 8 * MiB, mixedRegions(8 * MiB));
  for (const sub of SUBFORMATS) {
    it(sub, async () => {
      const out = join(dir, `${sub}.vmdk`);
      await convert({ source: src, output: out, format: 'vmdk', options: { subformat: sub, adapter_type: 'lsilogic' }, durable: false });
      const r = spawnSync('vmdkinfo', [out], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Media size:\s+8\.0 MiB \(8388608 bytes\)/);
      const kind = { monolithicSparse: 'Monolithic sparse', streamOptimized: 'Stream optimized', monolithicFlat: 'Monolithic flat', twoGbMaxExtentSparse: '2GB extent sparse', twoGbMaxExtentFlat: '2GB extent flat' }[sub];
      expect(r.stdout).toContain(kind);
    });
  }
});

describe('stream layout walker', () => {
  it('reads the ESXi sample as the canonical layout it is', () => {
    const s = walkStream(readFileSync(realWorld('esxi-ovftool-streamoptimized.vmdk')));
    expect(s.sequence.slice(-3)).toEqual(['GD', 'FOOTER', 'EOS']);
    expect(s.gtsAfterTheirGrains).toBe(true);
  });
});
