/** Path resolution and the ext driver's checks, on the committed fixtures and on bytes changed in memory. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GuestkitError, UnsupportedFeatureError } from '../../../src/errors.js';
import { openImage } from '../../../src/formats/open.js';
import { GuestPathError } from '../../../src/guest/fs/errors.js';
import { mountView } from '../../../src/guest/fs/registry.js';
import { MAX_SYMLINK_HOPS, splitGuestPath } from '../../../src/guest/fs/path.js';
import type { FileSystem } from '../../../src/guest/fs/types.js';
import { BufferView, DiskView } from '../../../src/guest/view.js';
import { workDir } from '../../helpers/work.js';
import { crc32cRaw } from '../../../src/formats/shared/crc32c.js';
import { describeDebugfs, fsFixtureAs } from './oracles.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof GuestkitError)) throw e;
    return e.code;
  }
}

describe('guest path splitting', () => {
  it('drops empty and . components, keeps .., refuses NUL and over-long paths', () => {
    expect(splitGuestPath('//a/./b/../c/')).toEqual(['a', 'b', '..', 'c']);
    expect(() => splitGuestPath('a\0b')).toThrow(GuestPathError);
    expect(() => splitGuestPath('a'.repeat(5000))).toThrow(/PATH_MAX/);
  });
});

describeDebugfs('ext path resolution follows Linux rules inside the guest', () => {
  const dir = workDir('guest-fs-paths');
  let raw: string;
  const withFs = async <T>(fn: (fs: FileSystem) => Promise<T>, bytes?: Uint8Array): Promise<T> => {
    if (bytes) return fn(await mountView(new BufferView(bytes, '/dev/sda')));
    const r = await openImage(raw);
    try {
      return await fn(await mountView(new DiskView(r, '/dev/sda')));
    } finally {
      await r.close();
    }
  };

  it('symlinks resolve inside the filesystem: relative, absolute, chained, through directories', async () => {
    raw = fsFixtureAs('ext4', 'raw', 'raw', dir);
    await withFs(async (fs) => {
      expect(text(await fs.readFile('/fast-link'))).toBe('hello, guest\n');
      expect(text(await fs.readFile('/chain'))).toBe('hello, guest\n');
      // As on Linux, `missing/../x` needs `missing` to exist: .. is not applied textually.
      expect(await code(fs.readFile('/slow-link'))).toBe('ENOENT');
      expect((await fs.readlink('/slow-link')).length).toBeGreaterThan(60);
      expect(text(await fs.readFile('/abs-link'))).toContain('ID=guestkit');
      expect(await fs.realpath('/abs-link')).toBe('/os-release');
      expect(await fs.realpath('/dir-link/a/../a')).toBe('/deep/a/a');
      expect((await fs.lstat('/fast-link')).type).toBe('symlink');
      expect((await fs.stat('/fast-link')).type).toBe('file');
    });
  });

  it('.. never climbs above the root, even through a symlink', async () => {
    await withFs(async (fs) => {
      expect(await fs.realpath('/../../..')).toBe('/');
      expect(text(await fs.readFile('/climb'))).toBe('hello, guest\n');
      expect(await fs.realpath('/climb')).toBe('/hello.txt');
    });
  });

  it('loops, dangling links and wrong types are typed errors', async () => {
    await withFs(async (fs) => {
      expect(await code(fs.stat('/loop-a'))).toBe('ELOOP');
      expect(await code(fs.readFile('/loop-a/x'))).toBe('ELOOP');
      expect((await fs.lstat('/loop-a')).type).toBe('symlink');
      expect(await code(fs.stat('/dangling'))).toBe('ENOENT');
      expect(await code(fs.stat('/nope'))).toBe('ENOENT');
      expect(await code(fs.readdir('/hello.txt'))).toBe('ENOTDIR');
      expect(await code(fs.stat('/hello.txt/x'))).toBe('ENOTDIR');
      expect(await code(fs.readFile('/deep'))).toBe('EISDIR');
      expect(await code(fs.readlink('/hello.txt'))).toBe('EINVAL');
      expect(await code(fs.readFile('/fifo'))).toBe('EINVAL');
      expect(await code(fs.readFile('/random.bin', 1000))).toBe('ELIMIT');
    });
  });

  it(`a chain of exactly ${MAX_SYMLINK_HOPS} links resolves and one more is ELOOP`, async () => {
    // Not in the committed fixture: made here with mke2fs -d from a folder of chained links.
    const { execFileSync } = await import('node:child_process');
    const { mkdirSync, symlinkSync, writeFileSync } = await import('node:fs');
    const src = `${dir}/chain-src`;
    mkdirSync(src);
    writeFileSync(`${src}/target`, 'end\n');
    symlinkSync('target', `${src}/l0`);
    for (let i = 1; i <= MAX_SYMLINK_HOPS; i++) symlinkSync(`l${i - 1}`, `${src}/l${i}`);
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, `${dir}/chain.img`, '4M'], { stdio: 'ignore' });
    await withFs(async (fs) => {
      expect(text(await fs.readFile(`/l${MAX_SYMLINK_HOPS - 1}`))).toBe('end\n');
      expect(await code(fs.readFile(`/l${MAX_SYMLINK_HOPS}`))).toBe('ELOOP');
    }, readFileSync(`${dir}/chain.img`));
  });

  it('partial reads, ranges and holes', async () => {
    await withFs(async (fs) => {
      const whole = await fs.readFile('/numbers.txt');
      expect(await fs.read('/numbers.txt', 1000, 50)).toEqual(whole.subarray(1000, 1050));
      expect(await fs.read('/numbers.txt', whole.length - 3, 50)).toEqual(whole.subarray(whole.length - 3));
      expect((await fs.read('/numbers.txt', whole.length + 10, 5)).length).toBe(0);
      const head = await fs.read('/sparse-head', 0, 4096);
      expect(head.every((b) => b === 0)).toBe(true);
      expect(text(await fs.read('/sparse-head', 1 << 20, 10))).toBe('tail\n');
      const chunks: Uint8Array[] = [];
      for await (const c of fs.createReadStream('/numbers.txt', { start: 10, end: 30000, chunkSize: 777 })) chunks.push(c);
      expect(Math.max(...chunks.map((c) => c.length))).toBe(777);
      expect(Buffer.concat(chunks)).toEqual(Buffer.from(whole.subarray(10, 30000)));
    });
  });

  it('a journal that needs recovery is read without replay, and said', async () => {
    await withFs(async (fs) => {
      expect(fs.warnings.join('\n')).toMatch(/journal needs recovery.*without replaying it, as debugfs does/);
      expect(text(await fs.readFile('/hello.txt'))).toBe('hello, guest\n');
    }, readFileSync(fsFixtureAs('ext4-recover', 'raw', 'raw', dir)));
  });

  it('an inode whose bytes changed gives a checksum warning naming it, and still reads', async () => {
    const bytes = new Uint8Array(readFileSync(raw));
    const ino = await withFs(async (fs) => (await fs.stat('/hello.txt')).ino);
    // Flip the low byte of the inode's atime: still a valid inode, no longer its checksum.
    const { ExtVolume } = await import('../../../src/guest/fs/ext/volume.js');
    const vol = await ExtVolume.open(new BufferView(bytes, '/dev/sda'), 'ext4');
    const offset = await vol.inodeOffset(ino);
    bytes[offset + 0x08] ^= 0xff;
    await withFs(async (fs) => {
      expect(text(await fs.readFile('/hello.txt'))).toBe('hello, guest\n');
      expect(fs.warnings.join('\n')).toMatch(new RegExp(`inode ${ino} checksum mismatch`));
    }, bytes);
  });

  it('extent-block and directory-block checksum mismatches are warnings naming the inode', async () => {
    const { ExtVolume } = await import('../../../src/guest/fs/ext/volume.js');
    const bytes = new Uint8Array(readFileSync(raw));
    const vol = await ExtVolume.open(new BufferView(bytes, '/dev/sda'), 'ext4');
    const bs = vol.geo.blockSize;
    // /fragmented has 500 extents: its root in the inode points at an extent block (depth >= 1).
    const frag = await vol.lookup(await vol.root(), 'fragmented');
    const root = new DataView(frag!.block.buffer, frag!.block.byteOffset, 60);
    expect(root.getUint16(6, true)).toBeGreaterThan(0);
    const leaf = root.getUint32(16, true);
    const leafView = new DataView(bytes.buffer, leaf * bs, bs);
    const entries = leafView.getUint16(2, true);
    expect(entries).toBeLessThan(leafView.getUint16(4, true));
    bytes[leaf * bs + 12 + 12 * entries + 1] ^= 0x5a; // an unused entry slot: covered by the checksum, read by nobody
    // /small's one directory block: flip a byte of the padding after its last name.
    const small = (await vol.lookup(await vol.root(), 'small'))!;
    const [run] = await vol.physicalRuns(small, 0, 1);
    const dirAt = run.pblk * bs;
    const d = new DataView(bytes.buffer, dirAt, bs);
    let at = 0;
    let last = 0;
    while (at < bs - 12) {
      last = at;
      at += d.getUint16(at + 4, true);
    }
    const pad = dirAt + last + 8 + d.getUint8(last + 6) + 2;
    bytes[pad] ^= 0x5a;
    await withFs(async (fs) => {
      const whole = await fs.readFile('/fragmented');
      expect(whole[8192 * 499]).toBe(65 + (499 % 26));
      expect((await fs.readdir('/small')).map((e) => e.name)).toEqual(['t1', 't2', 't3']);
      const w = fs.warnings.join('\n');
      expect(w).toMatch(new RegExp(`inode ${frag!.ino}: extent block ${leaf} checksum mismatch`));
      expect(w).toMatch(new RegExp(`directory inode ${small.ino}: block 0 checksum mismatch`));
    }, bytes);
  });

  it('unsupported incompatible features are refused by name', async () => {
    const bytes = new Uint8Array(readFileSync(raw));
    const sb = new DataView(bytes.buffer, 1024, 1024);
    sb.setUint32(0x60, sb.getUint32(0x60, true) | 0x10000 | 0x20000, true); // encrypt, casefold
    sb.setUint32(0x3fc, crc32cRaw(0xffffffff, bytes.subarray(1024, 1024 + 0x3fc)), true);
    const err = await mountView(new BufferView(bytes, '/dev/sda'), 'ext4').catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.message).toMatch(/unsupported incompatible features encrypt, casefold/);
    expect(err.field).toBe('s_featureIncompat');
  });
});

describe('filesystem warnings', () => {
  it('are said once each and bounded in number', async () => {
    const { warn, MAX_WARNINGS } = await import('../../../src/guest/fs/warnings.js');
    const list: string[] = [];
    warn(list, 'a');
    warn(list, 'a');
    expect(list).toEqual(['a']);
    for (let i = 0; i < 3 * MAX_WARNINGS; i++) warn(list, `w${i}`);
    expect(list.length).toBe(MAX_WARNINGS + 1);
    expect(list[MAX_WARNINGS]).toMatch(/more than/);
  });
});
