import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { openImage } from '../../src/formats/open.js';
import { DiskView, BufferView } from '../../src/guest/view.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import { CorruptImageError, GuestkitError } from '../../src/errors.js';
import { workDir } from '../helpers/work.js';
import { describeQemu, describeSfdisk, fixtureAs, sfdiskJson, SOURCE_FORMATS } from './oracles.js';

async function tableOf(path: string) {
  const reader = await openImage(path);
  try {
    return await readPartitionTable(new DiskView(reader, '/dev/sda'));
  } finally {
    await reader.close();
  }
}

/** Our table in sfdisk --json's terms (sectors, hex ids without leading zeros, upper-case GUIDs). */
function asSfdisk(t: NonNullable<Awaited<ReturnType<typeof tableOf>>>) {
  return t.partitions.map((p) => ({
    node: String(p.number),
    start: p.start / t.sectorSize,
    size: p.extended ? undefined : p.size / t.sectorSize,
    type: p.mbrType !== undefined ? p.mbrType.toString(16) : p.gptType,
    ...(p.gptType ? { uuid: p.partuuid.toUpperCase(), name: p.name || undefined, attrs: p.attributeText || undefined } : { bootable: p.bootable || undefined }),
  }));
}

function sfdiskRows(j: { partitions: Record<string, unknown>[] }) {
  return j.partitions.map((p) => ({
    node: String(p.node).replace(/^.*\.raw/, ''),
    start: p.start,
    size: p.type === '5' ? undefined : p.size,
    type: p.type,
    ...(p.uuid ? { uuid: p.uuid, name: p.name || undefined, attrs: p.attrs || undefined } : { bootable: p.bootable || undefined }),
  }));
}

describeSfdisk('partition tables agree with sfdisk --json, in every source format', () => {
  const dir = workDir('guest-parts');
  for (const fixture of ['mbr', 'gpt', 'gpt-backup', 'gpt-hybrid']) {
    it(fixture, async () => {
      const raw = fixtureAs(fixture, 'raw', 'raw', dir);
      const oracle = sfdiskJson(raw);
      for (const [format, ext] of SOURCE_FORMATS) {
        const t = await tableOf(format === 'raw' ? raw : fixtureAs(fixture, format, ext, dir));
        expect(t, format).toBeDefined();
        expect(t!.scheme).toBe(oracle.label === 'dos' ? 'mbr' : 'gpt');
        expect(t!.diskId).toBe(oracle.id);
        expect(asSfdisk(t!), format).toEqual(sfdiskRows(oracle));
        if (oracle.firstlba !== undefined) expect([t!.firstUsableLba, t!.lastUsableLba]).toEqual([oracle.firstlba, oracle.lastlba]);
      }
    });
  }
});

describeQemu('partition table details', () => {
  const dir = workDir('guest-parts2');
  it('MBR: logical partitions from 5, types named, PARTUUIDs from the disk signature', async () => {
    const t = (await tableOf(fixtureAs('mbr', 'qcow2', 'qcow2', dir)))!;
    expect(t.partitions.map((p) => [p.device, p.typeName, p.partuuid, !!p.logical])).toEqual([
      ['/dev/sda1', 'Linux', '1234abcd-01', false],
      ['/dev/sda2', 'Extended', '1234abcd-02', false],
      ['/dev/sda5', 'W95 FAT32 (LBA)', '1234abcd-05', true],
      ['/dev/sda6', 'Linux swap / Solaris', '1234abcd-06', true],
      ['/dev/sda7', 'Linux', '1234abcd-07', true],
    ]);
    expect(t.warnings).toEqual([]);
  });

  it('GPT: type names, names, attributes; the damaged primary is replaced by the backup with a warning', async () => {
    const t = (await tableOf(fixtureAs('gpt', 'qcow2', 'qcow2', dir)))!;
    expect(t.partitions.map((p) => p.typeName)).toEqual([
      'BIOS boot', 'EFI System', 'Linux filesystem', 'Linux swap', 'Microsoft basic data', 'Microsoft reserved',
    ]);
    expect(t.partitions[2].attributeText).toBe('LegacyBIOSBootable');
    expect(t.warnings).toEqual([]);
    const b = (await tableOf(fixtureAs('gpt-backup', 'qcow2', 'qcow2', dir)))!;
    expect(b.partitions).toEqual(t.partitions);
    expect(b.warnings[0]).toMatch(/primary GPT header is damaged \(header CRC32 .*backup header at LBA 98303/);
    const h = (await tableOf(fixtureAs('gpt-hybrid', 'qcow2', 'qcow2', dir)))!;
    expect(h.hybridMbr?.map((p) => [p.mbrType, p.start])).toEqual([[0xef, 4096 * 512]]);
    expect(h.warnings.join()).toMatch(/hybrid MBR/);
  });

  it('GPT on 4096-byte logical sectors (made by sgdisk on a loop device with -b 4096)', async () => {
    const t = (await tableOf(fixtureAs('gpt4k', 'vmdk', 'vmdk', dir)))!;
    expect(t.sectorSize).toBe(4096);
    expect(t.diskId).toBe('44444444-4444-4444-4444-444444444444');
    expect(t.partitions.map((p) => [p.device, p.start, p.size, p.name, p.partuuid])).toEqual([
      ['/dev/sda1', 256 * 4096, 16 * 1024 * 1024, 'data', '00000000-0000-0000-0000-0000000000aa'],
    ]);
  });

  it('a whole-disk filesystem has no table', async () => {
    expect(await tableOf(fixtureAs('fs-ext4', 'qcow2', 'qcow2', dir))).toBeUndefined();
    expect(await tableOf(fixtureAs('fs-fat32', 'qcow2', 'qcow2', dir))).toBeUndefined();
  });
});

/** A 16 MiB disk with an MBR whose sectors the tests rewrite. */
function mbrDisk(): Uint8Array {
  const d = new Uint8Array(16 * 1024 * 1024);
  d[510] = 0x55;
  d[511] = 0xaa;
  return d;
}
function entry(d: Uint8Array, sector: number, slot: number, type: number, start: number, count: number): void {
  const at = sector * 512 + 446 + slot * 16;
  d[at + 4] = type;
  const dv = new DataView(d.buffer);
  dv.setUint32(at + 8, start, true);
  dv.setUint32(at + 12, count, true);
  d[sector * 512 + 510] = 0x55;
  d[sector * 512 + 511] = 0xaa;
}

describe('hostile MBRs give typed errors naming file, field and offset', () => {
  const dir = workDir('guest-gptcrc');
  const read = (d: Uint8Array) => readPartitionTable(new BufferView(d, 'bad.img'));

  it('an entry past the end of the disk', async () => {
    const d = mbrDisk();
    entry(d, 0, 1, 0x83, 2048, 1 << 20);
    const e = await read(d).catch((x) => x);
    expect(e).toBeInstanceOf(CorruptImageError);
    expect([e.file, e.field, e.offset]).toEqual(['bad.img', 'partition 2 entry', 446 + 16]);
  });

  it('overlapping primaries', async () => {
    const d = mbrDisk();
    entry(d, 0, 0, 0x83, 2048, 4096);
    entry(d, 0, 1, 0x83, 4000, 100);
    await expect(read(d)).rejects.toThrow(/overlap/);
  });

  it('an EBR chain that loops, and one that leaves its extended partition', async () => {
    const d = mbrDisk();
    entry(d, 0, 0, 0x05, 2048, 8192);
    entry(d, 2048, 0, 0x83, 63, 100);
    entry(d, 2048, 1, 0x05, 1000, 1000);
    entry(d, 3048, 0, 0x83, 63, 100);
    entry(d, 3048, 1, 0x05, 0 + 1, 1000);
    // The second link points back at the first EBR's successor chain: 2049 → loops through 3048 again.
    entry(d, 2049, 0, 0, 0, 0);
    entry(d, 2049, 1, 0x05, 1000, 1000);
    const e = await read(d).catch((x) => x);
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e.message).toMatch(/loops back to sector 3048/);
    expect(e.field).toBe('EBR');

    const d2 = mbrDisk();
    entry(d2, 0, 0, 0x05, 2048, 8192);
    entry(d2, 2048, 0, 0x83, 63, 100);
    entry(d2, 2048, 1, 0x05, 9000, 1000);
    await expect(read(d2)).rejects.toThrow(/outside the extended partition/);
  });

  it('GPT with both headers damaged', async () => {
    const d = mbrDisk();
    entry(d, 0, 0, 0xee, 1, 32767);
    d.set(new TextEncoder().encode('EFI PART'), 512);
    const e = await read(d).catch((x) => x);
    expect(e).toBeInstanceOf(GuestkitError);
    expect(e.message).toMatch(/primary header is damaged .* and so is the backup/);
  });

  it('GPT whose entry array CRC does not match falls back to the backup', async () => {
    const raw = fixtureAs('gpt', 'raw', 'raw', dir);
    const d = new Uint8Array(readFileSync(raw));
    d[1024 + 56] ^= 0xff; // first entry's name: the array's CRC no longer matches
    const t = (await read(d))!;
    expect(t.warnings[0]).toMatch(/entry array CRC32/);
    expect(t.partitions[0].name).toBe('bios');
  });
});
