import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGuest, filesystemRows } from '../../src/index.js';
import { ALL_ROWS } from '../../src/guest/rows.js';
import { columns, formatText, humanSize, selection } from '../../src/cli/filesystems.js';
import { openImage } from '../../src/formats/open.js';
import { QEMU_IMG } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { guestkit } from '../helpers/cli.js';
import { GUEST_FIXTURES } from './helpers.js';
import { blkid, describeBlkid, describeQemu, fixtureAs, SOURCE_FORMATS } from './oracles.js';
import { realWorld } from '../helpers/real-world.js';
import { CorruptImageError } from '../../src/errors.js';

const fx = (name: string) => join(GUEST_FIXTURES, `${name}.qcow2`);

describeQemu('openGuest', () => {
  const dir = workDir('guest-open');

  for (const set of [['mbr'], ['gpt'], ['gpt4k'], ['lvm-a', 'lvm-b'], ['fs-ext4']]) {
    it(`${set.join('+')}: the same answers from every source format`, async () => {
      let first: unknown;
      for (const [format, ext] of SOURCE_FORMATS) {
        const g = await openGuest(set.map((n) => fixtureAs(n, format, ext, dir)));
        try {
          const rows = filesystemRows(g, ALL_ROWS);
          expect(rows.length).toBeGreaterThan(0);
          if (first === undefined) first = rows;
          else expect(rows, format).toEqual(first);
        } finally {
          await g.close();
        }
      }
    });
  }

  it('takes readers as well as paths, and reports the structure', async () => {
    const reader = await openImage(fx('gpt'));
    const g = await openGuest([{ reader, name: 'gpt.qcow2' }]);
    expect(g.devices.map((d) => [d.name, d.source, d.table?.scheme])).toEqual([['/dev/sda', 'gpt.qcow2', 'gpt']]);
    expect(g.filesystems.map((f) => [f.device, f.type, f.label, f.parent])).toEqual([
      ['/dev/sda2', 'vfat', 'ESP', '/dev/sda'],
      ['/dev/sda3', 'ext4', 'gptroot', '/dev/sda'],
      ['/dev/sda4', 'swap', undefined, '/dev/sda'],
      ['/dev/sda5', 'ntfs', 'WinData', '/dev/sda'],
    ]);
    await g.close();
    // A reader the caller passed stays open: the caller owns it.
    expect((await reader.read(0, 512)).length).toBe(512);
    await reader.close();
  });

  it('listing a 100 GiB guest reads a few hundred KiB', async () => {
    const big = join(dir, 'big.qcow2');
    execFileSync(QEMU_IMG ?? 'qemu-img', ['create', '-q', '-f', 'qcow2', '-b', fx('lvm-a'), '-F', 'qcow2', big, '100G']);
    const g = await openGuest([big, fx('lvm-b')], { allowOutside: true });
    try {
      expect(g.devices[0].size).toBe(100 * 1024 ** 3);
      expect(g.filesystems.map((f) => f.type)).toEqual(['ext4', 'ext4', 'ext4']);
      expect(g.bytesRead()).toBeLessThan(512 * 1024);
    } finally {
      await g.close();
    }
  });
});

describe('virt-filesystems output rules', () => {
  it('columns follow the rows asked for', () => {
    expect(columns({}, selection({}))).toEqual(['name']);
    expect(columns({ long: true }, selection({}))).toEqual(['name', 'type', 'vfs', 'label', 'size']);
    expect(columns({ long: true, uuid: true }, selection({ all: true }))).toEqual(['name', 'type', 'vfs', 'label', 'mbr', 'size', 'parent', 'uuid']);
    expect(columns({ long: true }, selection({ partitions: true }))).toEqual(['name', 'type', 'mbr', 'size', 'parent']);
  });

  it('pads to the widest cell, prints "-" for empty cells, narrows the gap past 72 columns', () => {
    expect(formatText([['Name', 'Size'], ['/dev/sda1', ''], ['/dev/sda', '10']])).toBe('Name       Size\n/dev/sda1  -\n/dev/sda   10\n');
    const wide = formatText([['x'.repeat(40), 'y'.repeat(40)]]);
    expect(wide).toBe(`${'x'.repeat(40)} ${'y'.repeat(40)}\n`);
  });

  it('human sizes as gnulib prints them', () => {
    expect([512, 1024, 1536, 16 * 2 ** 20, 100 * 2 ** 30, 10239].map(humanSize)).toEqual(['512', '1.0K', '1.5K', '16M', '100G', '10K']);
  });
});

describeQemu('guestkit filesystems', () => {
  const dir = workDir('guest-cli');
  it('--all --long --uuid prints virt-filesystems columns', () => {
    const r = guestkit(['filesystems', '--all', '--long', '--uuid', fx('mbr')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'Name      Type       VFS  Label    MBR Size     Parent   UUID',
        '/dev/sda1 filesystem ext4 root     -   8388608  -        11111111-2222-3333-4444-555555555555',
        '/dev/sda5 filesystem vfat DATA     -   8388608  -        0A1B-2C3D',
        '/dev/sda6 filesystem swap swp      -   4194304  -        66666666-7777-8888-9999-aaaaaaaaaaaa',
        '/dev/sda7 filesystem ext3 logical7 -   7340032  -        bbbbbbbb-cccc-dddd-eeee-ffffffffffff',
        '/dev/sda1 partition  -    -        83  8388608  /dev/sda -',
        '/dev/sda2 partition  -    -        05  1024     /dev/sda -',
        '/dev/sda5 partition  -    -        0c  8388608  /dev/sda -',
        '/dev/sda6 partition  -    -        82  4194304  /dev/sda -',
        '/dev/sda7 partition  -    -        83  7340032  /dev/sda -',
        '/dev/sda  device     -    -        -   33554432 -        -',
        '',
      ].join('\n'),
    );
  });

  it('without options: mountable filesystems by name; swap left out', () => {
    const r = guestkit(['filesystems', fx('mbr')]);
    expect(r.stdout).toBe('/dev/sda1\n/dev/sda5\n/dev/sda7\n');
  });

  it('--lvs --vgs --pvs (and their long names) select those rows', () => {
    const args = [fx('lvm-a'), fx('lvm-b')];
    const want = '/dev/guestvg/root\n/dev/guestvg/striped\n/dev/guestvg/rest\n/dev/guestvg\n/dev/sda1\n/dev/sdb\n';
    expect(guestkit(['filesystems', '--lvs', '--vgs', '--pvs', ...args]).stdout).toBe(want);
    expect(guestkit(['filesystems', '--logical-volumes', '--volume-groups', '--physical-volumes', ...args]).stdout).toBe(want);
  });

  it('--output json: objects keyed by the CSV columns', () => {
    const r = guestkit(['filesystems', '--all', '--output', 'json', fx('lvm-a'), fx('lvm-b')]);
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout);
    expect(Object.keys(rows[0])).toEqual(['name', 'type', 'vfs', 'label', 'mbr', 'size', 'parent', 'uuid']);
    expect(rows.filter((x: { type: string }) => x.type === 'lv').map((x: { name: string; parent: string }) => [x.name, x.parent])).toEqual([
      ['/dev/guestvg/root', '/dev/guestvg'],
      ['/dev/guestvg/striped', '/dev/guestvg'],
      ['/dev/guestvg/rest', '/dev/guestvg'],
    ]);
    expect(rows.find((x: { type: string }) => x.type === 'pv')).toMatchObject({ name: '/dev/sda1', uuid: 'a'.repeat(32), vfs: null, mbr: null });
  });

  it('--csv quotes as virt-filesystems does; a damaged GPT warns on stderr', () => {
    const r = guestkit(['filesystems', '--long', '--csv', fx('gpt-backup')]);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('/dev/sda2,filesystem,vfat,ESP,8388608');
    expect(r.stderr).toMatch(/warning: \/dev\/sda: the primary GPT header is damaged/);
  });

  it('a corrupt table is an error naming the field and offset', () => {
    const disk = new Uint8Array(1024 * 1024);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk[446 + 4] = 0x83;
    new DataView(disk.buffer).setUint32(446 + 8, 2048, true);
    new DataView(disk.buffer).setUint32(446 + 12, 1 << 20, true);
    const path = join(dir, 'bad-mbr.img');
    writeFileSync(path, disk);
    const r = guestkit(['filesystems', path]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/bad-mbr\.img \(\/dev\/sda\): partition 1 .*ends past the end of the disk .*\(field partition 1 entry, offset 446\)/);
  });
});

describe('Windows dynamic disks are detected, not opened', () => {
  it('an MBR partition of type 0x42 gives a warning and no filesystem', async () => {
    const disk = new Uint8Array(4 * 1024 * 1024);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk[446 + 4] = 0x42;
    new DataView(disk.buffer).setUint32(446 + 8, 63, true);
    new DataView(disk.buffer).setUint32(446 + 12, 8000, true);
    const { memoryReader } = await import('./helpers.js');
    const g = await openGuest([{ reader: memoryReader(disk), name: 'dyn.img' }]);
    expect(g.warnings).toEqual(['/dev/sda: Windows dynamic disk (LDM): its volumes are not opened']);
    expect(g.filesystems).toEqual([]);
    expect(g.partitions.map((p) => p.typeName)).toEqual(['SFS']);
  });
});

describeBlkid('the real-world samples', () => {
  const dir = workDir('guest-rw');
  it.each(['ext2-fs.qcow2', 'ext2-fs.vmdk', 'qcow2-v2-compressed.qcow2'])('%s lists its filesystem as blkid identifies it', async (name) => {
    const raw = join(dir, `${name}.raw`);
    execFileSync(QEMU_IMG ?? 'qemu-img', ['convert', '-O', 'raw', realWorld(name), raw]);
    const oracle = blkid(raw);
    const g = await openGuest([realWorld(name)]);
    try {
      expect(g.filesystems.map((f) => [f.device, f.type, f.label, f.uuid])).toEqual([['/dev/sda', oracle.TYPE, oracle.LABEL, oracle.UUID]]);
      expect(g.bytesRead()).toBeLessThan(128 * 1024);
    } finally {
      await g.close();
    }
  });

  it('grub-mbr.raw (a lone MBR sector) is a typed error naming the entry', async () => {
    const e = await openGuest([realWorld('grub-mbr.raw')]).catch((x) => x);
    expect(e).toBeInstanceOf(CorruptImageError);
    expect([e.field, e.offset]).toEqual(['partition 1 entry', 446]);
  });
});
