import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { openImage } from '../../../src/formats/open.js';
import { mountView } from '../../../src/guest/fs/registry.js';
import type { FileSystem } from '../../../src/guest/fs/types.js';
import { DiskView } from '../../../src/guest/view.js';
import { workDir } from '../../helpers/work.js';
import { SOURCE_FORMATS } from '../oracles.js';
import { describeMtools, fsFixtureAs, mdir, mdirPaths, mtype } from './oracles.js';
import { walk } from './walk.js';

const FAT_FIXTURES = ['fat12', 'fat16', 'fat32'];
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function withFs<T>(path: string, fn: (fs: FileSystem) => Promise<T>): Promise<T> {
  const reader = await openImage(path);
  try {
    return await fn(await mountView(new DiskView(reader, '/dev/sda')));
  } finally {
    await reader.close();
  }
}

const minute = (sec: number): string => new Date(sec * 1000).toISOString().slice(0, 16).replace('T', ' ');

async function snapshot(fs: FileSystem) {
  const nodes = await walk(fs);
  const files: [string, string][] = [];
  for (const n of nodes) {
    if (n.stat.type !== 'file') continue;
    const h = createHash('sha256');
    for await (const c of fs.createReadStream(n.path, { chunkSize: 4096 + 3 })) h.update(c);
    files.push([n.path, h.digest('hex')]);
  }
  return { nodes, files };
}

describeMtools('FAT12/16/32 listings and files agree with mdir and mtype, in every source format', () => {
  const dir = workDir('guest-fs-fat');
  for (const name of FAT_FIXTURES) {
    it(name, async () => {
      const raw = fsFixtureAs(name, 'raw', 'raw', dir);
      const base = await withFs(raw, async (fs) => {
        expect(fs.type).toBe('vfat');
        expect(fs.caseInsensitive).toBe(true);
        return snapshot(fs);
      });
      const ours = base.nodes.filter((n) => n.path !== '/').map((n) => (n.stat.type === 'directory' ? `${n.path}/` : n.path));
      // mdir -b applies the NT lowercase flags to A-Z only, while its long-name column (compared
      // exactly below), Windows and Linux lowercase accented letters too: compare the paths without case.
      const fold = (l: string[]) => l.map((p) => p.toLowerCase()).sort();
      expect(fold(ours)).toEqual(fold(mdirPaths(raw)));
      for (const d of base.nodes.filter((n) => n.entries)) {
        const theirs = mdir(raw, d.path);
        const mine = await Promise.all(
          d.entries!.map(async (e) => {
            const st = base.nodes.find((n) => n.path === (d.path === '/' ? `/${e.name}` : `${d.path}/${e.name}`))!.stat;
            // mdir shows <DIR> where Linux (and we) give a directory's clusters as its size.
            if (e.type === 'directory') expect(st.size % 512 === 0 && st.size > 0, e.name).toBe(true);
            return { name: e.name, directory: e.type === 'directory', size: e.type === 'directory' ? 0 : st.size, mtime: minute(st.mtime.sec) };
          }),
        );
        expect(mine, d.path).toEqual(theirs);
      }
      for (const [path, hash] of base.files.filter(([p]) => !/entry number/.test(p) || p.endsWith(' 7.txt'))) expect(hash, path).toBe(sha(mtype(raw, path)));
      for (const [format, ext] of SOURCE_FORMATS.filter(([f]) => f !== 'raw')) {
        const again = await withFs(fsFixtureAs(name, format, ext, dir), snapshot);
        expect(again, format).toEqual(base);
      }
    }, 120_000);
  }
});

describeMtools('FAT lookups fold case and accept 8.3 aliases', () => {
  const dir = workDir('guest-fs-fat-case');
  it('finds a file by any case and by its short name', async () => {
    await withFs(fsFixtureAs('fat32', 'raw', 'raw', dir), async (fs) => {
      const want = new TextDecoder().decode(await fs.readFile('/A file with a rather long name, indeed.text'));
      expect(new TextDecoder().decode(await fs.readFile('/a FILE with a rather LONG name, indeed.TEXT'))).toBe(want);
      expect(new TextDecoder().decode(await fs.readFile('/AFILEW~1.TEX'))).toBe(want);
      expect((await fs.readdir('/lower')).map((e) => e.name).sort()).toEqual(['UPPER.txt', 'lower.TXT', 'readme.txt']);
      expect(await fs.realpath('/efi/boot/../BOOT/bootx64.efi')).toBe('/efi/BOOT/bootx64.efi');
    });
  });
});

describeMtools('FAT damage is caught, not followed', () => {
  const dir = workDir('guest-fs-fat-damage');
  const load = async () => {
    const { readFileSync } = await import('node:fs');
    const { FatVolume } = await import('../../../src/guest/fs/fat/volume.js');
    const { BufferView } = await import('../../../src/guest/view.js');
    const bytes = new Uint8Array(readFileSync(fsFixtureAs('fat16', 'raw', 'raw', dir)));
    const vol = await FatVolume.open(new BufferView(bytes, '/dev/sda'));
    const boot = (await vol.lookup((await vol.lookup((await vol.lookup(await vol.root(), 'EFI'))!, 'BOOT'))!, 'BOOTX64.EFI'))!;
    const long = (await vol.lookup(await vol.root(), 'A file with a rather long name, indeed.text'))!;
    return { bytes, vol, boot, long, mount: () => mountView(new BufferView(bytes, '/dev/sda'), 'vfat') };
  };

  it('a FAT chain that loops back is an error naming the loop', async () => {
    const { bytes, vol, boot, mount } = await load();
    const c = boot.firstCluster;
    new DataView(bytes.buffer).setUint16(vol.geo.fatOffset + 2 * (c + 1), c, true);
    const err = await (await mount()).readFile('/EFI/BOOT/BOOTX64.EFI').catch((e) => e);
    expect(err.message).toMatch(new RegExp(`FAT chain loops back to cluster ${c}`));
  });

  it('a chain reaching a free cluster or ending early is an error', async () => {
    const { bytes, vol, boot, mount } = await load();
    const d = new DataView(bytes.buffer);
    d.setUint16(vol.geo.fatOffset + 2 * boot.firstCluster, 0, true);
    expect((await (await mount()).readFile('/EFI/BOOT/BOOTX64.EFI').catch((e) => e)).message).toMatch(/free cluster/);
    d.setUint16(vol.geo.fatOffset + 2 * boot.firstCluster, 0xffff, true);
    expect((await (await mount()).readFile('/EFI/BOOT/BOOTX64.EFI').catch((e) => e)).message).toMatch(/chain ends after 1 clusters/);
  });

  it('a long name whose checksum does not match its 8.3 entry is dropped for the 8.3 name', async () => {
    const { bytes, long, mount } = await load();
    expect(long.entry!.shortName).toBe('AFILEW~1.TEX');
    bytes[long.entry!.position - 32 + 13] ^= 0x01; // the checksum of the LFN part right before the 8.3 entry
    const names = (await (await mount()).readdir('/')).map((e) => e.name);
    expect(names).toContain('AFILEW~1.TEX');
    expect(names).not.toContain('A file with a rather long name, indeed.text');
  });
});
