/**
 * Descriptor disks beyond what qemu-img creates: ESX COWD deltas (vmfsSparse), vmfs and vmfsThin
 * flat pairs, descriptors mixing FLAT / SPARSE / ZERO / RDONLY extents, the capacity-0 sparse
 * header that carries a descriptor. Compared with qemu-img where it reads them, with the content
 * they were built from where it does not.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnsupportedFeatureError } from '../../src/errors.js';
import { describeOracle, qemuImg, qemuImgStatus, qemuIo, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { buildCowd, buildSparse, descriptorText, grainOf } from './build.js';
import { expectSameAsRaw, KiB, MiB, openAsPipe, openVmdk, ourMap, qemuMap, readAll } from './helpers.js';

const SECTOR = 512;

describeOracle('ESX COWD (vmfsSparse) extents', () => {
  const dir = workDir('vmdk-cowd');
  // 40 MiB with 8-sector grains: two grain tables (one covers 16 MiB), a partial third.
  const capacity = (40 * MiB) / SECTOR;
  const grains = new Map<number, Uint8Array>([
    [0, grainOf(1, 8)],
    [5, grainOf(2, 8)],
    [4095, grainOf(3, 8)],
    [4096, grainOf(4, 8)],
    [10_239, grainOf(5, 8)],
  ]);
  writeFileSync(join(dir, 'disk-delta.vmdk'), buildCowd({ capacitySectors: capacity, grainSectors: 8, grains }));
  writeFileSync(join(dir, 'disk.vmdk'), descriptorText({ createType: 'vmfsSparse', extents: [`RW ${capacity} VMFSSPARSE "disk-delta.vmdk"`] }));

  it('a vmfsSparse descriptor reads as qemu-img reads it, and maps alike', async () => {
    const ref = join(dir, 'ref.raw');
    qemuToRaw(join(dir, 'disk.vmdk'), ref, 'vmdk');
    const r = await openVmdk(join(dir, 'disk.vmdk'));
    try {
      await expectSameAsRaw(r, ref);
      expect(await ourMap(r)).toEqual(qemuMap(join(dir, 'disk.vmdk')));
      expect(r.info().subformat).toBe('vmfsSparse');
      expect((r.info().formatSpecific!.extents as Array<Record<string, unknown>>)[0]).toMatchObject({ format: 'VMFSSPARSE', 'cluster-size': 4096 });
    } finally {
      await r.close();
    }
  });

  it('a COWD file opened on its own reads the grains it was built with', async () => {
    const r = await openVmdk(join(dir, 'disk-delta.vmdk'));
    try {
      expect(r.virtualSize).toBe(40 * MiB);
      for (const [g, bytes] of grains) expect(Buffer.from(await r.read(g * 4096, 4096)).equals(Buffer.from(bytes))).toBe(true);
      expect((await r.read(4096, 4096)).every((b) => b === 0)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('refuses a COWD whose grain directory cannot cover its capacity', async () => {
    const bytes = buildCowd({ capacitySectors: capacity, grainSectors: 8, grains });
    new DataView(bytes.buffer).setUint32(24, 1, true);
    writeFileSync(join(dir, 'short-gd.vmdk'), bytes);
    await expect(openVmdk(join(dir, 'short-gd.vmdk'))).rejects.toMatchObject({ field: 'numGDEntries', offset: 24 });
  });
});

describeOracle('flat pairs and mixed descriptors', () => {
  const dir = workDir('vmdk-mixed');
  const flat = pseudoRandom(3 * MiB, 42);
  writeFileSync(join(dir, 'esx-flat.vmdk'), flat);

  it('vmfs (ESXi -flat.vmdk pair) reads as qemu-img reads it', async () => {
    writeFileSync(join(dir, 'esx.vmdk'), descriptorText({ createType: 'vmfs', extents: [`RW ${flat.length / SECTOR} VMFS "esx-flat.vmdk"`] }));
    const ref = join(dir, 'esx.raw');
    qemuToRaw(join(dir, 'esx.vmdk'), ref, 'vmdk');
    const r = await openVmdk(join(dir, 'esx.vmdk'));
    try {
      await expectSameAsRaw(r, ref);
      expect(r.info().formatSpecific!['adapter-type']).toBe('lsilogic');
    } finally {
      await r.close();
    }
  });

  it('vmfsThin (which qemu-img refuses) reads its flat file', async () => {
    writeFileSync(join(dir, 'thin.vmdk'), descriptorText({ createType: 'vmfsThin', extents: [`RW ${flat.length / SECTOR} VMFS "esx-flat.vmdk"`] }));
    expect(qemuImgStatus('info', join(dir, 'thin.vmdk')).stderr).toMatch(/Unsupported image type 'vmfsThin'/);
    const r = await openVmdk(join(dir, 'thin.vmdk'));
    try {
      expect(Buffer.from(await readAll(r)).equals(Buffer.from(flat))).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('FLAT at an offset + SPARSE + FLAT, as qemu-img reads them', async () => {
    // A qemu-made sparse extent with data, placed between two windows of one flat file.
    const sparse = join(dir, 'mix-s.vmdk');
    qemuImg('create', '-q', '-f', 'vmdk', sparse, '2M');
    qemuIo('vmdk', sparse, 'write -P 0x5a 64k 128k');
    writeFileSync(
      join(dir, 'mix.vmdk'),
      descriptorText({
        createType: 'twoGbMaxExtentSparse',
        extents: ['RW 1024 FLAT "esx-flat.vmdk" 2048', 'RW 4096 SPARSE "mix-s.vmdk"', 'RW 100 FLAT "esx-flat.vmdk" 0'],
      }),
    );
    const ref = join(dir, 'mix.raw');
    qemuToRaw(join(dir, 'mix.vmdk'), ref, 'vmdk');
    const r = await openVmdk(join(dir, 'mix.vmdk'));
    try {
      expect(r.virtualSize).toBe((1024 + 4096 + 100) * SECTOR);
      await expectSameAsRaw(r, ref);
      expect(await ourMap(r)).toEqual(qemuMap(join(dir, 'mix.vmdk')));
      expect(r.files().length).toBe(4);
    } finally {
      await r.close();
    }
  });

  it('ZERO and RDONLY extents count (qemu-img skips both; VMware reads them)', async () => {
    writeFileSync(
      join(dir, 'zero.vmdk'),
      descriptorText({ createType: 'monolithicFlat', extents: ['RDONLY 8 FLAT "esx-flat.vmdk" 0', 'RW 16 ZERO', 'RW 8 FLAT "esx-flat.vmdk" 8'] }),
    );
    const r = await openVmdk(join(dir, 'zero.vmdk'));
    try {
      expect(r.virtualSize).toBe(32 * SECTOR);
      const all = await readAll(r);
      expect(Buffer.from(all.subarray(0, 8 * SECTOR)).equals(Buffer.from(flat.subarray(0, 8 * SECTOR)))).toBe(true);
      expect(all.subarray(8 * SECTOR, 24 * SECTOR).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(all.subarray(24 * SECTOR)).equals(Buffer.from(flat.subarray(8 * SECTOR, 16 * SECTOR)))).toBe(true);
      expect(await ourMap(r)).toEqual([
        { start: 0, length: 8 * SECTOR, kind: 'data', depth: 0 },
        { start: 8 * SECTOR, length: 16 * SECTOR, kind: 'zero', depth: 0 },
        { start: 24 * SECTOR, length: 8 * SECTOR, kind: 'data', depth: 0 },
      ]);
    } finally {
      await r.close();
    }
  });

  it('a flat file shorter than its extent reads zeros past its end, with a warning', async () => {
    writeFileSync(join(dir, 'short.vmdk'), descriptorText({ createType: 'monolithicFlat', extents: [`RW ${(4 * MiB) / SECTOR} FLAT "esx-flat.vmdk" 0`] }));
    const r = await openVmdk(join(dir, 'short.vmdk'));
    try {
      const tail = await r.read(3 * MiB - 4 * KiB, 8 * KiB);
      expect(Buffer.from(tail.subarray(0, 4 * KiB)).equals(Buffer.from(flat.subarray(3 * MiB - 4 * KiB)))).toBe(true);
      expect(tail.subarray(4 * KiB).every((b) => b === 0)).toBe(true);
      expect(r.info().warnings?.[0]).toMatch(/holds 3145728 of its 4194304 bytes/);
    } finally {
      await r.close();
    }
  });

  it('a sparse header of capacity 0 whose descriptor lists extents (QEMU reads it so)', async () => {
    const header = new Uint8Array(SECTOR);
    const dv = new DataView(header.buffer);
    header.set(Buffer.from('KDMV'));
    dv.setUint32(4, 1, true);
    dv.setUint32(8, 3, true);
    dv.setBigUint64(20, 128n, true);
    dv.setBigUint64(28, 1n, true);
    dv.setBigUint64(36, 20n, true);
    dv.setUint32(44, 512, true);
    const text = Buffer.from(descriptorText({ createType: 'monolithicFlat', extents: [`RW ${flat.length / SECTOR} FLAT "esx-flat.vmdk" 0`] }));
    const file = new Uint8Array(21 * SECTOR);
    file.set(header);
    file.set(text, SECTOR);
    writeFileSync(join(dir, 'cap0.vmdk'), file);
    const ref = join(dir, 'cap0.raw');
    qemuToRaw(join(dir, 'cap0.vmdk'), ref, 'vmdk');
    const r = await openVmdk(join(dir, 'cap0.vmdk'));
    try {
      await expectSameAsRaw(r, ref);
      expect(r.info().subformat).toBe('monolithicFlat');
    } finally {
      await r.close();
    }
  });
});

describe('extent kinds that cannot be read are refused as unsupported', () => {
  const dir = workDir('vmdk-unsupported');
  writeFileSync(join(dir, 'x-flat.vmdk'), new Uint8Array(4096));
  const cases: Array<[string, string, string[]]> = [
    ['NOACCESS extent', 'monolithicFlat', ['NOACCESS 8 FLAT "x-flat.vmdk" 0']],
    ['raw device map', 'vmfsRawDeviceMap', ['RW 8 VMFSRDM "x-flat.vmdk"']],
    ['VMFSRAW extent', 'monolithicFlat', ['RW 8 VMFSRAW "x-flat.vmdk"']],
    ['seSparse extent', 'seSparse', ['RW 8 SESPARSE "x-flat.vmdk"']],
    ['unknown extent type', 'monolithicFlat', ['RW 8 FANCY "x-flat.vmdk"']],
    ['full device', 'fullDevice', ['RW 8 FLAT "/dev/sda" 0']],
  ];
  for (const [what, createType, extents] of cases) {
    it(what, async () => {
      const path = join(dir, `${what.replace(/\W+/g, '-')}.vmdk`);
      writeFileSync(path, descriptorText({ createType, extents }));
      const err = await openVmdk(path).then(
        (r) => r.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnsupportedFeatureError);
      expect((err as UnsupportedFeatureError).file).toBe(path);
    });
  }

  it('a monolithicSparse from a pipe is refused with one clear line', async () => {
    const { openAsPipe } = await import('./helpers.js');
    const sub = join(dir, 'p');
    mkdirSync(sub);
    const img = join(sub, 's.vmdk');
    const { convert } = await import('../../src/api/convert.js');
    writeFileSync(join(sub, 's.raw'), pseudoRandom(128 * KiB, 3));
    await convert({ source: join(sub, 's.raw'), output: img, format: 'vmdk', durable: false });
    await expect(openAsPipe(img)).rejects.toThrow(/only a streamOptimized VMDK .* can be read from a pipe/);
    expect(readFileSync(img).subarray(0, 4).toString()).toBe('KDMV');
  });
});

describeOracle('sparse extents with grains other than 64 KiB', () => {
  const dir = workDir('vmdk-grains');
  const cases: Array<[string, number, number, boolean]> = [
    ['8 KiB grains, 128-entry tables', 16, 128, false],
    ['256 KiB grains', 512, 512, false],
    ['4 KiB compressed grains with markers', 8, 512, true],
  ];
  for (const [what, grainSectors, gtEntries, markers] of cases) {
    it(`${what} read as qemu-img reads them`, async () => {
      const capacitySectors = 3 * gtEntries * grainSectors + 5 * grainSectors + 3; // a partial last table and grain
      const grainCount = Math.ceil(capacitySectors / grainSectors);
      const picks = [0, 1, gtEntries - 1, gtEntries, 2 * gtEntries + 7, grainCount - 1];
      const grains = new Map(picks.map((g, i) => [g, grainOf(50 + i, grainSectors)] as [number, Uint8Array]));
      const path = join(dir, `g${grainSectors}-${markers}.vmdk`);
      writeFileSync(path, buildSparse({ capacitySectors, grainSectors, gtEntries, grains, markers, redundant: !markers }, (b) => deflateSync(b)));
      const ref = join(dir, `g${grainSectors}-${markers}.raw`);
      qemuToRaw(path, ref, 'vmdk');
      const r = await openVmdk(path);
      try {
        expect(r.virtualSize).toBe(capacitySectors * SECTOR);
        await expectSameAsRaw(r, ref);
        expect(await ourMap(r)).toEqual(qemuMap(path));
        expect(r.info().clusterSize).toBe(grainSectors * SECTOR);
      } finally {
        await r.close();
      }
      if (markers) {
        // Grains start a few sectors in, inside the head a pipe keeps for detection.
        const p = await openAsPipe(path, 777);
        try {
          expect(Buffer.from(await readAll(p)).equals(readFileSync(ref))).toBe(true);
        } finally {
          await p.close();
        }
      }
    });
  }
});
