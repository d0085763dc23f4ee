/**
 * Differential reading: every VMDK subformat qemu-img writes, with adapter types ide and lsilogic,
 * reads byte for byte as `qemu-img convert -O raw` reads it — from a file, and streamOptimized
 * also from a pipe (library StreamSource with odd chunking, and the CLI with `-` as source).
 * Maps agree with `qemu-img map`; info reports what the descriptor says.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptImageError } from '../../src/errors.js';
import { guestkitBinary } from '../helpers/cli.js';
import { describeOracle, qemuImg, qemuImgStatus, qemuIo, qemuToRaw } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { expectSameAsRaw, KiB, MiB, mixedRegions, openAsPipe, openVmdk, ourMap, qemuMap, readAll, writeRaw } from './helpers.js';

/** Two grain-table spans and a partial last grain. */
const SIZE = 48 * MiB + 12 * KiB;
const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
const ADAPTERS = ['ide', 'lsilogic'] as const;

describeOracle('VMDK images made by qemu-img read as qemu-img reads them', () => {
  const dir = workDir('vmdk-read');
  const src = join(dir, 'src.raw');
  writeRaw(src, SIZE, mixedRegions(SIZE));

  for (const sub of SUBFORMATS) {
    for (const adapter of ADAPTERS) {
      describe(`${sub}, adapter ${adapter}`, () => {
        const img = join(dir, `${sub}-${adapter}.vmdk`);
        const ref = join(dir, `${sub}-${adapter}.raw`);
        qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub},adapter_type=${adapter}`, src, img);
        qemuToRaw(img, ref, 'vmdk');

        it('reads byte for byte like qemu-img convert -O raw', async () => {
          const r = await openVmdk(img);
          try {
            expect(r.virtualSize).toBe(SIZE);
            await expectSameAsRaw(r, ref);
          } finally {
            await r.close();
          }
        });

        it('maps like qemu-img map and reports the descriptor in info', async () => {
          const r = await openVmdk(img);
          try {
            expect(await ourMap(r)).toEqual(qemuMap(img));
            const info = r.info();
            expect(info.subformat).toBe(sub);
            const spec = info.formatSpecific!;
            expect(spec['create-type']).toBe(sub);
            expect(spec['adapter-type']).toBe(adapter);
            expect(spec['hw-version']).toBe('4');
            const heads = adapter === 'ide' ? 16 : 255;
            expect(spec.geometry).toEqual({ cylinders: Math.floor(SIZE / (63 * heads * 512)), heads, sectors: 63 });
            const q = JSON.parse(qemuImg('info', '--output=json', img));
            expect(spec.cid).toBe(q['format-specific'].data.cid);
            expect(spec['parent-cid']).toBe(q['format-specific'].data['parent-cid']);
            // The extents exactly as qemu-img lists them: file names, types, sizes, grains, compression.
            expect(spec.extents).toEqual(q['format-specific'].data.extents);
            expect(r.files().length).toBe(sub === 'monolithicSparse' || sub === 'streamOptimized' ? 1 : 2);
          } finally {
            await r.close();
          }
        });

        if (sub === 'streamOptimized') {
          it('reads forward-only from a pipe cut at odd places', async () => {
            const r = await openAsPipe(img, 1000);
            try {
              expect(r.info().subformat).toBe('streamOptimized');
              const ours = await readAll(r);
              expect(Buffer.from(ours).equals(readFileSync(ref))).toBe(true);
            } finally {
              await r.close();
            }
          });

          it('converts from stdin with the CLI (- as source)', () => {
            const out = join(dir, `${sub}-${adapter}-stdin.raw`);
            const res = guestkitBinary(['convert', '-O', 'raw', '-', out], { input: readFileSync(img) });
            expect(res.stderr).toBe('');
            expect(res.status).toBe(0);
            expect(readFileSync(out).equals(readFileSync(ref))).toBe(true);
          });
        }
      });
    }
  }
});

describeOracle('VMDK features read as qemu-img reads them', () => {
  const dir = workDir('vmdk-features');

  it('twoGbMaxExtentSparse with three extents, data across an extent boundary', async () => {
    const img = join(dir, 'split.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', img, `${4 * 1024 + 1}M`);
    qemuIo('vmdk', img, 'write -P 0x11 0 64k', `write -P 0x22 ${2 * 1024 * MiB - 64 * KiB} 192k`, `write -P 0x33 ${4 * 1024 * MiB} 1M`);
    const r = await openVmdk(img);
    try {
      expect(r.virtualSize).toBe((4 * 1024 + 1) * MiB);
      expect((r.info().formatSpecific!.extents as unknown[]).length).toBe(3);
      const map = await ourMap(r);
      expect(map).toEqual(qemuMap(img));
      const expectFill = async (at: number, len: number, byte: number) => {
        const got = await r.read(at, len);
        expect(got.every((b) => b === byte), `${len} bytes at ${at} should be ${byte}`).toBe(true);
      };
      await expectFill(0, 64 * KiB, 0x11);
      await expectFill(2 * 1024 * MiB - 64 * KiB, 192 * KiB, 0x22);
      await expectFill(4 * 1024 * MiB, MiB, 0x33);
      await expectFill(MiB, MiB, 0);
    } finally {
      await r.close();
    }
  });

  it('twoGbMaxExtentFlat with two extents, read across the boundary', async () => {
    const img = join(dir, 'splitflat.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', img, `${2 * 1024 + 1}M`);
    qemuIo('vmdk', img, `write -P 0x44 ${2 * 1024 * MiB - 4 * KiB} 8k`);
    const r = await openVmdk(img);
    try {
      expect((r.info().formatSpecific!.extents as unknown[]).length).toBe(2);
      const got = await r.read(2 * 1024 * MiB - 8 * KiB, 16 * KiB);
      expect(got.subarray(0, 4 * KiB).every((b) => b === 0)).toBe(true);
      expect(got.subarray(4 * KiB, 12 * KiB).every((b) => b === 0x44)).toBe(true);
      expect(got.subarray(12 * KiB).every((b) => b === 0)).toBe(true);
      expect((await ourMap(r)).map((x) => x.kind)).toEqual(['data']);
    } finally {
      await r.close();
    }
  });

  it('zeroed-grain entries (zeroed_grain=on) read as zeros and map as zero', async () => {
    const img = join(dir, 'zg.vmdk');
    const ref = join(dir, 'zg.raw');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'zeroed_grain=on,compat6=on', img, '8M');
    qemuIo('vmdk', img, 'write -P 0xab 0 256k', 'write -z 64k 128k', 'write -z 1M 64k');
    qemuToRaw(img, ref, 'vmdk');
    const r = await openVmdk(img);
    try {
      await expectSameAsRaw(r, ref);
      const map = await ourMap(r);
      expect(map).toEqual(qemuMap(img));
      expect(map.filter((x) => x.kind === 'zero').length).toBe(2);
      expect(r.info().formatSpecific!['hw-version']).toBe('6');
    } finally {
      await r.close();
    }
  });

  it('a delta link reads through to its parent, and maps the parent at depth 1', async () => {
    const base = join(dir, 'base.vmdk');
    const child = join(dir, 'child.vmdk');
    const ref = join(dir, 'child.raw');
    qemuImg('create', '-q', '-f', 'vmdk', base, '8M');
    qemuIo('vmdk', base, 'write -P 0x01 0 1M', 'write -P 0x02 4M 64k');
    qemuImg('create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', child);
    qemuIo('vmdk', child, 'write -P 0x03 512k 1M');
    qemuToRaw(child, ref, 'vmdk');
    const r = await openVmdk(child);
    try {
      await expectSameAsRaw(r, ref);
      expect(await ourMap(r)).toEqual(qemuMap(child));
      const info = r.info();
      expect(info.backingFile).toBe('base.vmdk');
      expect(info.backingFormat).toBe('vmdk');
      expect(info.backingFileFull).toBe(base);
      expect((info.formatSpecific!['parent-chain'] as Array<Record<string, unknown>>)[0].filename).toBe(base);
      expect(r.files()).toEqual([child, base]);
    } finally {
      await r.close();
    }
  });

  it('a delta whose parent changed since (CID mismatch) is refused when a read reaches the parent, as qemu-img does', async () => {
    const base = join(dir, 'base2.vmdk');
    const child = join(dir, 'child2.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', base, '8M');
    qemuImg('create', '-q', '-f', 'vmdk', '-b', 'base2.vmdk', '-F', 'vmdk', child);
    qemuIo('vmdk', child, 'write -P 0x03 0 64k');
    // Writing to the base gives it a new CID.
    qemuIo('vmdk', base, 'write -P 0x01 1M 64k');
    const q = qemuImgStatus('convert', '-O', 'raw', child, join(dir, 'never.raw'));
    expect(q.status).not.toBe(0);
    const r = await openVmdk(child);
    try {
      expect((await r.read(0, 64 * KiB)).every((b) => b === 3)).toBe(true);
      await expect(r.read(MiB, 64 * KiB)).rejects.toBeInstanceOf(CorruptImageError);
      await expect(r.read(MiB, 64 * KiB)).rejects.toMatchObject({ field: 'parentCID', file: child });
    } finally {
      await r.close();
    }
  });

  it('hwversion and toolsversion options of qemu-img show in info', async () => {
    const img = join(dir, 'hw.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', '-o', 'hwversion=11,toolsversion=12345,adapter_type=buslogic', img, '16M');
    const r = await openVmdk(img);
    try {
      const spec = r.info().formatSpecific!;
      expect(spec['hw-version']).toBe('11');
      expect(spec['adapter-type']).toBe('buslogic');
      expect(r.info().clusterSize).toBe(64 * KiB);
    } finally {
      await r.close();
    }
  });

  it('a QEMU streamOptimized image (tables up front, no footer) reads from a pipe', async () => {
    const src = join(dir, 'so-src.raw');
    const img = join(dir, 'so.vmdk');
    writeRaw(src, 8 * MiB, mixedRegions(8 * MiB));
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', src, img);
    const r = await openAsPipe(img, 4096);
    try {
      expect(Buffer.from(await readAll(r)).equals(readFileSync(src))).toBe(true);
    } finally {
      await r.close();
    }
  });
});
