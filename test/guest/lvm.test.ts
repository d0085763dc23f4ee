import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImage } from '../../src/formats/open.js';
import { DiskView, RangeView, BufferView, type BlockView } from '../../src/guest/view.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import { identify } from '../../src/guest/probe.js';
import { parseConfig } from '../../src/guest/volumes/lvm2/config.js';
import { buildLvs, metadataOf, scanLvm, type PhysicalVolume } from '../../src/guest/volumes/lvm2/vg.js';
import { CorruptImageError, GuestkitError, LimitExceededError } from '../../src/errors.js';
import type { ImageReader } from '../../src/formats/types.js';
import { workDir } from '../helpers/work.js';
import { describeE2fsck, describeQemu, fixtureAs, SOURCE_FORMATS } from './oracles.js';

async function lvmViews(a: ImageReader, b: ImageReader): Promise<BlockView[]> {
  const sda = new DiskView(a, '/dev/sda');
  const sdb = new DiskView(b, '/dev/sdb');
  const t = (await readPartitionTable(sda))!;
  return [new RangeView(sda, t.partitions[0].start, t.partitions[0].size, '/dev/sda1'), sdb];
}


describeQemu('LVM2: a volume group over two disks (made by pvcreate/vgcreate/lvcreate), in every source format', () => {
  const dir = workDir('guest-lvm');
  for (const [format, ext] of SOURCE_FORMATS) {
    it(format, async () => {
      const a = await openImage(fixtureAs('lvm-a', format, ext, dir));
      const b = await openImage(fixtureAs('lvm-b', format, ext, dir));
      try {
        const scan = await scanLvm(await lvmViews(a, b));
        expect(scan.warnings).toEqual([]);
        expect(scan.pvs.map((p) => [p.device, p.uuid, p.vgName, p.size])).toEqual([
          ['/dev/sda1', 'a'.repeat(32), 'guestvg', 22 * 1024 * 1024],
          ['/dev/sdb', 'b'.repeat(32), 'guestvg', 23 * 1024 * 1024],
        ]);
        expect(scan.vgs).toHaveLength(1);
        const vg = scan.vgs[0];
        expect([vg.name, vg.extentSize, vg.size]).toEqual(['guestvg', 1024 * 1024, 45 * 1024 * 1024]);
        // vgcreate makes a random VG id; it is printed as 32 characters without dashes, as virt-filesystems does.
        expect(vg.uuid).toMatch(/^[A-Za-z0-9]{32}$/);
        expect(vg.lvs.map((l) => [l.device, l.size, l.unsupported])).toEqual([
          ['/dev/guestvg/root', 6 << 20, undefined],
          ['/dev/guestvg/striped', 8 << 20, undefined],
          ['/dev/guestvg/rest', 31 << 20, undefined],
        ]);
        const ids = await Promise.all(vg.lvs.map(async (l) => identify(l.view!)));
        expect(ids.map((i) => [i?.type, i?.label, i?.uuid])).toEqual([
          ['ext4', 'lvroot', '00000000-0000-0000-0000-00000000007e'],
          ['ext4', 'lvstriped', '00000000-0000-0000-0000-0000000005d0'],
          ['ext4', 'lvspan', '00000000-0000-0000-0000-00000000059a'],
        ]);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it('a VG with a disk missing: its LVs on that disk are reported, not read', async () => {
    const a = await openImage(fixtureAs('lvm-a', 'qcow2', 'qcow2', dir));
    try {
      const [pa] = await lvmViews(a, a);
      const scan = await scanLvm([pa]);
      expect(scan.warnings[0]).toMatch(/missing 1 physical volume/);
      const lvs = scan.vgs[0].lvs;
      expect(lvs.map((l) => [l.name, l.missingPvs, Boolean(l.view)])).toEqual([
        ['root', undefined, true],
        ['striped', ['b'.repeat(32)], false],
        ['rest', ['b'.repeat(32)], false],
      ]);
    } finally {
      await a.close();
    }
  });
});

describe('LVM config syntax', () => {
  it('parses sections, strings with escapes, numbers, arrays and comments', () => {
    const t = parseConfig('vg {\n id = "a\\"b" # comment\n n = -12\n f = 1.5\n list = ["x", 3, [1,2]]\n inner { deep = "y" }\n}\ncontents = "Text"\n');
    expect(t).toEqual({ vg: { id: 'a"b', n: -12, f: 1.5, list: ['x', 3, [1, 2]], inner: { deep: 'y' } }, contents: 'Text' });
  });

  it.each([
    ['vg {', /unterminated section/],
    ['vg { a = }', /value expected/],
    ['a = "open', /unterminated string/],
    ['}', /unbalanced/],
    ['a = [1, 2', /unterminated array|value expected/],
    ['a = 99999999999999999999', /out of range/],
    ['a ; b', /unexpected character/],
  ])('%s is a typed error', (text, msg) => {
    const e = (() => {
      try {
        parseConfig(text, 'pv.img');
      } catch (x) {
        return x as GuestkitError;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e!.message).toMatch(msg);
    expect(e!.file).toBe('pv.img');
  });

  it('nesting is bounded', () => {
    expect(() => parseConfig('a { '.repeat(100) + '}'.repeat(100))).toThrow(LimitExceededError);
    expect(() => parseConfig('a = ' + '['.repeat(100) + ']'.repeat(100))).toThrow(LimitExceededError);
  });
});

/** Metadata as LVM writes it for LV types we do not open (lib/format_text/export.c layout). */
const UNSUPPORTED_META = `vg0 {
  id = "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA"
  seqno = 3
  extent_size = 8192
  physical_volumes { pv0 { id = "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB" pe_start = 2048 pe_count = 100 } }
  logical_volumes {
    pool { id = "CCCCCC-CCCC-CCCC-CCCC-CCCC-CCCC-CCCCCC" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 10 type = "thin-pool" metadata = "pool_tmeta" pool = "pool_tdata" } }
    thin1 { id = "DDDDDD-DDDD-DDDD-DDDD-DDDD-DDDD-DDDDDD" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 20 type = "thin" thin_pool = "pool" } }
    pool_tdata { id = "EEEEEE-EEEE-EEEE-EEEE-EEEE-EEEE-EEEEEE" status = ["READ", "WRITE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 10 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } }
    r1 { id = "FFFFFF-FFFF-FFFF-FFFF-FFFF-FFFF-FFFFFF" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 5 type = "raid1" device_count = 2 } }
    m1 { id = "GGGGGG-GGGG-GGGG-GGGG-GGGG-GGGG-GGGGGG" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 5 type = "mirror" mirror_count = 2 } }
    c1 { id = "HHHHHH-HHHH-HHHH-HHHH-HHHH-HHHH-HHHHHH" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 5 type = "cache" cache_pool = "cpool" origin = "c1_corig" } }
    bad { id = "IIIIII-IIII-IIII-IIII-IIII-IIII-IIIIII" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
      segment1 { start_extent = 0 extent_count = 5 type = "striped" stripe_count = 1 stripes = ["pv0", 98] } }
  }
}`;

describe('LV types we do not open are reported by name, never misread', () => {
  const pv: PhysicalVolume = {
    device: '/dev/sda',
    view: new BufferView(new Uint8Array(1024 * 1024), '/dev/sda'),
    uuid: 'B'.repeat(32),
    label: { uuid: 'B'.repeat(32), deviceSize: 0, dataAreas: [], metadataAreas: [] },
    size: 0,
  };

  it('thin, thin-pool, raid1, mirror, cache; and an LV past the end of its PV is an error', () => {
    const meta = metadataOf(UNSUPPORTED_META.replace(/ {4}bad \{[^]*?\} \}\n/, ''), 'x');
    const lvs = buildLvs(meta.vgName, meta.meta, new Map([[pv.uuid, pv]]), 'x');
    expect(lvs.map((l) => [l.name, l.unsupported, l.view])).toEqual([
      ['pool', 'thin-pool', undefined],
      ['thin1', 'thin', undefined],
      ['r1', 'raid1', undefined],
      ['m1', 'mirror', undefined],
      ['c1', 'cache', undefined],
    ]);
    const all = metadataOf(UNSUPPORTED_META, 'x');
    expect(() => buildLvs(all.vgName, all.meta, new Map([[pv.uuid, pv]]), 'x')).toThrow(/uses extents 98\+5 of pv0, which has 100|runs past the end/);
  });

  it('metadata that does not fit the schema is a typed error naming the field', () => {
    expect(() => metadataOf('vg { id = "x" seqno = "one" extent_size = 1 physical_volumes { } }', 'pv.img')).toThrow(/seqno/);
  });
});

describeE2fsck('LVM2 LVs checked by e2fsck', () => {
  const dir = workDir('guest-lvm-fsck');
  it('the striped and spanning LVs read back as filesystems e2fsck finds clean', async () => {
    const a = await openImage(fixtureAs('lvm-a', 'qcow2', 'qcow2', dir));
    const b = await openImage(fixtureAs('lvm-b', 'qcow2', 'qcow2', dir));
    try {
      const vg = (await scanLvm(await lvmViews(a, b))).vgs[0];
      for (const lv of vg.lvs) {
        const out = join(dir, `${lv.name}.img`);
        writeFileSync(out, await lv.view!.read(0, lv.size));
        execFileSync('e2fsck', ['-fn', out], { stdio: 'pipe' });
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

});
