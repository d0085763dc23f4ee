import { describe, expect, it } from 'vitest';
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

