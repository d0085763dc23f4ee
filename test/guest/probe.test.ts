import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { openImage } from '../../src/formats/open.js';
import { DiskView, BufferView, RangeView } from '../../src/guest/view.js';
import { blkidKeys, identify } from '../../src/guest/probe.js';
import { extKind } from '../../src/guest/probes/ext.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import { workDir } from '../helpers/work.js';
import { blkid, describeBlkid, fixtureAs, SOURCE_FORMATS } from './oracles.js';

const COMPARED = ['TYPE', 'USAGE', 'UUID', 'LABEL', 'BLOCK_SIZE', 'VERSION', 'SEC_TYPE', 'LABEL_FATBOOT', 'UUID_SUB', 'LOGUUID', 'EXT_JOURNAL', 'SUBSYSTEM'];
/** Types we name without reading their UUID or label (the issue asks for the type only). */
const TYPE_ONLY = new Set(['udf', 'zfs_member', 'BitLocker', 'ReFS', 'hfsplus', 'apfs']);

function pick(r: Record<string, string>, type: string): Record<string, string> {
  const keys = TYPE_ONLY.has(type) ? ['TYPE', 'USAGE'] : COMPARED;
  return Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
}

const FS_FIXTURES = ['ext2', 'ext3', 'ext4', 'jbd', 'xfs', 'btrfs', 'fat12', 'fat16', 'fat32', 'fatlabels', 'fatnolabel', 'exfat', 'ntfs', 'swap', 'iso', 'udf', 'luks1', 'luks2'];

describeBlkid('identification agrees with blkid -p, in every source format', () => {
  const dir = workDir('guest-probe');
  for (const name of FS_FIXTURES) {
    it(name, async () => {
      const raw = fixtureAs(`fs-${name}`, 'raw', 'raw', dir);
      const oracle = blkid(raw);
      expect(oracle.TYPE).toBeDefined();
      for (const [format, ext] of SOURCE_FORMATS) {
        const reader = await openImage(format === 'raw' ? raw : fixtureAs(`fs-${name}`, format, ext, dir));
        try {
          const id = await identify(new DiskView(reader, '/dev/sda'));
          expect(id, format).toBeDefined();
          expect(pick(blkidKeys(id!), id!.type), format).toEqual(pick(oracle, oracle.TYPE));
        } finally {
          await reader.close();
        }
      }
    });
  }

  for (const name of ['mbr', 'gpt', 'lvm-a']) {
    it(`each partition of ${name}`, async () => {
      const path = fixtureAs(name, 'qcow2', 'qcow2', dir);
      const raw = fixtureAs(name, 'raw', 'raw', dir);
      const reader = await openImage(path);
      try {
        const disk = new DiskView(reader, '/dev/sda');
        const t = (await readPartitionTable(disk))!;
        for (const p of t.partitions.filter((x) => !x.extended)) {
          const oracle = blkid(raw, p.start, p.size);
          const id = await identify(new RangeView(disk, p.start, p.size, p.device));
          if (!oracle.TYPE) expect(id, p.device).toBeUndefined();
          else expect(pick(blkidKeys(id!), id!.type), p.device).toEqual(pick(oracle, oracle.TYPE));
        }
      } finally {
        await reader.close();
      }
    });
  }
});

describe('ext types by feature flags, as blkid decides', () => {
  it.each([
    [0, 0x2, 0x3, 0, 'ext2'],
    [0x4, 0x2, 0x3, 0, 'ext3'],
    [0x4, 0x2 | 0x40 | 0x80, 0x3, 0, 'ext4'],
    [0, 0x40, 0, 0, 'ext4'],
    [0x4, 0x2, 0x3 | 0x400, 0, 'ext4'],
    [0, 0x8, 0, 0, 'jbd'],
    [0x4, 0x2, 0x3, 0x4, 'ext4dev'],
    [0, 0x4, 0, 0, undefined],
  ])('compat %s incompat %s ro_compat %s flags %s → %s', (c, i, r, f, want) => {
    expect(extKind(c, i, r, f)).toBe(want);
  });
});

describe('type-only probes on synthetic headers', () => {
  const at = (size: number, pos: number, bytes: number[] | string) => {
    const b = new Uint8Array(size);
    b.set(typeof bytes === 'string' ? Array.from(bytes, (c) => c.charCodeAt(0)) : bytes, pos);
    return b;
  };
  it.each([
    ['BitLocker', () => { const b = at(8192, 3, '-FVE-FS-'); b[510] = 0x55; b[511] = 0xaa; return b; }],
    ['ReFS', () => { const b = at(8192, 3, 'ReFS\0\0\0\0'); b.set([0x46, 0x53, 0x52, 0x53], 16); return b; }],
    ['hfsplus', () => at(8192, 1024, [0x48, 0x2b, 0, 4])],
    ['apfs', () => { const b = at(8192, 32, 'NXSB'); b[24] = 1; return b; }],
  ])('%s', async (type, make) => {
    expect((await identify(new BufferView(make(), 'x')))?.type).toBe(type);
  });

  it('nothing in zeros, nothing in a tiny view', async () => {
    expect(await identify(new BufferView(new Uint8Array(1 << 20)))).toBeUndefined();
    expect(await identify(new BufferView(new Uint8Array(10)))).toBeUndefined();
  });
});


describeBlkid('vfat labels: the root directory entry wins over the boot sector, as blkid decides', () => {
  const dir = workDir('guest-fatlabel');
  it('a label written only to the root directory (as Windows relabels)', async () => {
    const raw = fixtureAs('fs-fatlabels', 'raw', 'raw', dir);
    const bytes = new Uint8Array(readFileSync(raw));
    // FAT16: the root directory follows the reserved sectors and the FATs.
    const dv = new DataView(bytes.buffer);
    const sector = dv.getUint16(11, true);
    const rootStart = (dv.getUint16(14, true) + bytes[16] * dv.getUint16(22, true)) * sector;
    let entry = -1;
    for (let at = rootStart; at < rootStart + 512 * 32; at += 32) if (bytes[at + 11] === 0x08) { entry = at; break; }
    expect(entry).toBeGreaterThan(0);
    bytes.set(new TextEncoder().encode('ROOTONLY   '), entry);
    writeFileSync(raw, bytes);
    const oracle = blkid(raw);
    expect([oracle.LABEL, oracle.LABEL_FATBOOT]).toEqual(['ROOTONLY', 'ROOTLBL']);
    const id = (await identify(new BufferView(bytes)))!;
    expect(pick(blkidKeys(id), 'vfat')).toEqual(pick(oracle, 'vfat'));
  });
});

describe('MD RAID superblocks (synthetic: mdadm --create needs the md driver)', () => {
  it('1.2 at 4 KiB and 0.90 at the end', async () => {
    const b = new Uint8Array(1 << 20);
    const dv = new DataView(b.buffer);
    dv.setUint32(4096, 0xa92b4efc, true);
    dv.setUint32(4096 + 4, 1, true);
    for (let i = 0; i < 16; i++) b[4096 + 16 + i] = i;
    b.set(new TextEncoder().encode('host:0'), 4096 + 32);
    const id = (await identify(new BufferView(b)))!;
    expect([id.type, id.version, id.uuid, id.label]).toEqual(['linux_raid_member', '1.2', '00010203-0405-0607-0809-0a0b0c0d0e0f', 'host:0']);
    const c = new Uint8Array(1 << 20);
    const at = (1 << 20) - 65536;
    new DataView(c.buffer).setUint32(at, 0xa92b4efc, true);
    c.set([1, 2, 3, 4], at + 20);
    c.set(Array.from({ length: 12 }, (_, i) => 0x10 + i), at + 52);
    expect((await identify(new BufferView(c)))).toMatchObject({ type: 'linux_raid_member', version: '0.90.0', uuid: '01020304-1011-1213-1415-161718191a1b' });
  });
});
