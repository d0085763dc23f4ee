import { diskOpeners } from '../../src/formats/open.js';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CorruptImageError, GuestkitError, UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { Ova } from '../../src/ova/ova.js';
import { realWorld } from '../helpers/real-world.js';
import { QEMU_IMG, describeOracle } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import type { ImageReader } from '../../src/formats/types.js';

const DIR = fileURLToPath(new URL('../../fixtures/ova/', import.meta.url));
const fx = (n: string) => join(DIR, n);
const ORACLE = new Map(
  readFileSync(fx('ORACLE.sha256'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/).reverse() as [string, string]),
);

async function sha256Of(r: ImageReader): Promise<string> {
  const h = createHash('sha256');
  for (let at = 0; at < r.virtualSize; at += 1 << 20) h.update(await r.read(at, Math.min(1 << 20, r.virtualSize - at)));
  return h.digest('hex');
}

describe('OVA: VMware-style export made with GNU tar and qemu-img', () => {
  for (const name of ['web01.ova', 'web01-pax.ova', 'web01-chunked.ova']) {
    it(`${name}: describes the VM and reads every disk as qemu-img reads the extracted member`, async () => {
      const ova = await Ova.open(fx(name));
      try {
        const { ovf, disks } = ova.info;
        expect(ovf.version).toBe('1.0');
        expect(ovf.systems).toHaveLength(1);
        const vm = ovf.systems[0]!;
        expect(vm).toMatchObject({ id: 'web01', name: 'web01', osId: '101', osType: 'ubuntu64Guest', cpus: 2, memory: 2048 * 2 ** 20, firmware: 'efi' });
        expect(vm.nics).toEqual([{ name: 'Network adapter 1', network: 'VM Network', type: 'VmxNet3', mac: undefined }]);
        expect(vm.controllers).toEqual([{ instanceId: '3', kind: 'scsi', subtype: 'VirtualSCSI', address: '0' }]);
        expect(disks.map((d) => [d.id, d.capacity, d.populatedSize, d.format, d.subformat, d.controllerKind, d.unit])).toEqual([
          ['vmdisk1', 2 * 2 ** 20, 1048576, 'vmdk', 'streamOptimized', 'scsi', 0],
          ['vmdisk2', 2 ** 20, 65536, 'vmdk', 'streamOptimized', 'scsi', 1],
        ]);
        if (name === 'web01-chunked.ova') expect(disks[0]!.members).toHaveLength(3);
        for (const [i, want] of [[0, 'web01-disk1.raw'], [1, 'web01-disk2.raw']] as const) {
          const r = await ova.openDisk(i, diskOpeners, { verify: true });
          try {
            expect(r.format).toBe('vmdk');
            expect(await sha256Of(r)).toBe(ORACLE.get(want));
          } finally {
            await r.close();
          }
        }
        expect(ova.disk('vmdisk2').index).toBe(1);
        expect(ova.disk('web01-disk2.vmdk').index).toBe(1);
        expect(() => ova.disk(undefined)).toThrow(UsageError);
        expect(() => ova.disk('9')).toThrow(/no disk "9"/);
      } finally {
        await ova.close();
      }
    });
  }

  it('pax manifest in the "SHA1 (file) = x" spelling is checked', async () => {
    const ova = await Ova.open(fx('web01-pax.ova'));
    expect(ova.manifest.map((e) => e.algorithm)).toEqual(['sha1', 'sha1', 'sha1']);
    expect(await ova.verifyMember('web01-disk1.vmdk')).toBe(true);
    await ova.close();
  });

  it('a manifest mismatch fails the disk it concerns, naming it, and not the other', async () => {
    const ova = await Ova.open(fx('web01-badmf.ova'));
    try {
      await expect(ova.openDisk(1, diskOpeners, { verify: true })).rejects.toThrow(/SHA256 mismatch for web01-disk2\.vmdk/);
      const r = await ova.openDisk(0, diskOpeners, { verify: true });
      await r.close();
    } finally {
      await ova.close();
    }
  });

  it('GNU long member names are read', async () => {
    const ova = await Ova.open(fx('longname.ova'));
    expect(ova.info.descriptor).toBe(`${'a'.repeat(120)}.ovf`);
    await ova.close();
  });

  it('a ../ member name is refused', async () => {
    await expect(Ova.open(fx('evil-name.ova'))).rejects.toThrow(/"\.\.\/evil\.vmdk" leaves the archive/);
  });

  it('a missing disk member is named; a .cert member is reported', async () => {
    const dir = workDir('ova-missing');
    execFileSync('tar', ['-xf', fx('web01.ova'), '-C', dir]);
    execFileSync('sh', ['-c', 'echo "-----BEGIN CERTIFICATE-----" > web01.cert', ''], { cwd: dir });
    execFileSync('tar', ['--format=ustar', '-cf', 'm.ova', 'web01.ovf', 'web01-disk1.vmdk', 'web01.cert'], { cwd: dir });
    const ova = await Ova.open(join(dir, 'm.ova'));
    try {
      expect(ova.info.certificate).toBe('web01.cert');
      expect(ova.info.disks[1]!.members).toEqual([]);
      await expect(ova.openDisk('vmdisk2', diskOpeners)).rejects.toThrow(/disk vmdisk2: its file web01-disk2\.vmdk is not in the OVA/);
    } finally {
      await ova.close();
    }
  });

  it('a file that is not a tar is refused with a typed error', async () => {
    await expect(Ova.open(realWorld('grub-mbr.raw'))).rejects.toBeInstanceOf(CorruptImageError);
  });
});

describe('OVA: real VirtualBox export (openstack/glance test data)', () => {
  it('parses the vbox: dialect and refuses the stub member as a disk', async () => {
    const ova = await Ova.open(realWorld('virtualbox-export-stub.ova'));
    try {
      const vm = ova.info.ovf.systems[0]!;
      expect(vm).toMatchObject({ id: 'testserver', name: 'testserver', osId: '94', osType: 'Ubuntu_64', cpus: 1, memory: 512 * 2 ** 20, firmware: 'bios' });
      expect(vm.nics).toEqual([{ name: "Ethernet adapter on 'NAT'", network: 'NAT', type: 'E1000', mac: undefined }]);
      expect(ova.info.disks).toMatchObject([{ id: 'vmdisk2', capacity: 8589934592, format: 'vmdk', subformat: 'streamOptimized', controllerKind: 'sata', unit: 0, storedSize: 4 }]);
      const err = await ova.openDisk(undefined, diskOpeners).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptImageError);
      expect((err as GuestkitError).message).toMatch(/disk vmdisk2 \(testserver-disk1\.vmdk\) is not a readable vmdk image/);
    } finally {
      await ova.close();
    }
  });
});

describeOracle('OVA disks against qemu-img on the extracted members (live)', () => {
  it('tar -xf + qemu-img convert -O raw equals our reading inside the OVA', async () => {
    const dir = workDir('ova-oracle');
    execFileSync('tar', ['-xf', fx('web01-pax.ova'), '-C', dir]);
    const listed = execFileSync('tar', ['-tf', fx('web01-pax.ova')], { encoding: 'utf8' }).trim().split('\n');
    const ova = await Ova.open(fx('web01-pax.ova'));
    expect(ova.info.members.map((m) => m.name)).toEqual(listed);
    for (const d of ova.info.disks) {
      execFileSync(QEMU_IMG!, ['convert', '-f', 'vmdk', '-O', 'raw', join(dir, d.members[0]!), join(dir, `${d.id}.raw`)]);
      const want = createHash('sha256').update(readFileSync(join(dir, `${d.id}.raw`))).digest('hex');
      const r = await ova.openDisk(d.index, diskOpeners);
      expect(await sha256Of(r)).toBe(want);
      await r.close();
    }
    await ova.close();
  });
});

describe('OVA: ovf:compression="gzip" members', () => {
  it('are inflated forward and read as qemu-img reads the extracted, gunzipped member', async () => {
    const ova = await Ova.open(fx('web01-gzip.ova'));
    try {
      expect(ova.info.disks.map((d) => d.compression)).toEqual(['gzip', 'gzip']);
      for (const [i, want] of [[0, 'web01-disk1.raw'], [1, 'web01-disk2.raw']] as const) {
        const r = await ova.openDisk(i, diskOpeners, { verify: true });
        try {
          expect(await sha256Of(r)).toBe(ORACLE.get(want));
        } finally {
          await r.close();
        }
      }
    } finally {
      await ova.close();
    }
  });

  it('a gzip member that does not inflate gives a typed error naming it', async () => {
    const bytes = new Uint8Array(readFileSync(fx('web01-gzip.ova')));
    const ova0 = await Ova.open(fx('web01-gzip.ova'));
    const m = ova0.info.members.findIndex((x) => x.name === 'web01-disk1.vmdk');
    await ova0.close();
    // Corrupt the deflate data of disk 1 (past the gzip header), then read the disk through.
    const { listTar } = await import('../../src/ova/tar.js');
    const { BufferSource } = await import('../../src/stream/source.js');
    const member = (await listTar(new BufferSource(bytes)))[m]!;
    bytes.fill(0xff, member.offset + 20, member.offset + 60);
    const ova = await Ova.fromSource(new BufferSource(bytes, 'bad-gzip.ova'));
    const err = await (async () => {
      const r = await ova.openDisk(0, diskOpeners);
      await sha256Of(r);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestkitError);
    expect(String(err)).toMatch(/web01-disk1\.vmdk/);
  });
});
