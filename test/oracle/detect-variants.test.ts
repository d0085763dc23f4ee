/**
 * Detection names the right format and subformat for every image qemu-img makes in every format
 * and subformat of docs/FORMATS.md §8 — by content only: the files get a neutral extension.
 */
import { expect, it } from 'vitest';
import { join } from 'node:path';
import { describeOracle, qemuImg } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { detectFormat } from '../../src/api/info.js';

const VARIANTS: Array<[string, string[], string, string | undefined]> = [
  ['q3', ['-f', 'qcow2'], 'qcow2', 'v3'],
  ['q2', ['-f', 'qcow2', '-o', 'compat=0.10'], 'qcow2', 'v2'],
  ['q512', ['-f', 'qcow2', '-o', 'cluster_size=512'], 'qcow2', 'v3'],
  ['q2m', ['-f', 'qcow2', '-o', 'cluster_size=2M'], 'qcow2', 'v3'],
  ['qxl2', ['-f', 'qcow2', '-o', 'extended_l2=on'], 'qcow2', 'v3'],
  ['qzstd', ['-f', 'qcow2', '-o', 'compression_type=zstd'], 'qcow2', 'v3'],
  ['qlazy', ['-f', 'qcow2', '-o', 'lazy_refcounts=on'], 'qcow2', 'v3'],
  ['qr1', ['-f', 'qcow2', '-o', 'refcount_bits=1'], 'qcow2', 'v3'],
  ['vsparse', ['-f', 'vmdk'], 'vmdk', 'monolithicSparse'],
  ['vflat', ['-f', 'vmdk', '-o', 'subformat=monolithicFlat'], 'vmdk', 'monolithicFlat'],
  ['vts', ['-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse'], 'vmdk', 'twoGbMaxExtentSparse'],
  ['vtf', ['-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat'], 'vmdk', 'twoGbMaxExtentFlat'],
  ['vstream', ['-f', 'vmdk', '-o', 'subformat=streamOptimized'], 'vmdk', 'streamOptimized'],
  ['vzg', ['-f', 'vmdk', '-o', 'zeroed_grain=on,compat6=on'], 'vmdk', 'monolithicSparse'],
  ['hdyn', ['-f', 'vpc'], 'vhd', 'dynamic'],
  ['hfix', ['-f', 'vpc', '-o', 'subformat=fixed'], 'vhd', 'fixed'],
  ['hforce', ['-f', 'vpc', '-o', 'force_size=on'], 'vhd', 'dynamic'],
  ['hffix', ['-f', 'vpc', '-o', 'subformat=fixed,force_size=on'], 'vhd', 'fixed'],
  ['ddyn', ['-f', 'vdi'], 'vdi', 'dynamic'],
  ['dstat', ['-f', 'vdi', '-o', 'static=on'], 'vdi', 'static'],
  ['x', ['-f', 'vhdx'], 'vhdx', 'dynamic'],
  ['xfix', ['-f', 'vhdx', '-o', 'subformat=fixed,block_size=1M'], 'vhdx', 'fixed'],
  ['r', ['-f', 'raw'], 'raw', undefined],
];

describeOracle('detection of every variant qemu-img creates', () => {
  const dir = workDir('detect-variants');
  for (const [name, args, format, subformat] of VARIANTS) {
    it(`${name}: ${args.join(' ')} → ${format}${subformat ? ` (${subformat})` : ''}`, async () => {
      const path = join(dir, `${name}.img`);
      qemuImg('create', '-q', ...args, path, '16M');
      const d = await detectFormat(path);
      expect(d.format).toBe(format);
      expect(d.subformat).toBe(subformat);
    });
  }

  it('a streamOptimized VMDK from convert and a child delta are detected too', async () => {
    const raw = join(dir, 'c.raw');
    qemuImg('create', '-q', '-f', 'raw', raw, '4M');
    const so = join(dir, 'so.img');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, so);
    expect(await detectFormat(so)).toMatchObject({ format: 'vmdk', subformat: 'streamOptimized' });
    const base = join(dir, 'base.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', base, '4M');
    const child = join(dir, 'child.img');
    qemuImg('create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', child);
    expect((await detectFormat(child)).format).toBe('vmdk');
  });
});
