import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openImage } from '../../../src/formats/open.js';
import { mountView } from '../../../src/guest/fs/registry.js';
import type { FileSystem, Stat } from '../../../src/guest/fs/types.js';
import { DiskView } from '../../../src/guest/view.js';
import { realWorld } from '../../helpers/real-world.js';
import { workDir } from '../../helpers/work.js';
import { SOURCE_FORMATS } from '../oracles.js';
import { debugfsBatch, describeDebugfs, fsFixtureAs, dq, parseDebugfsLs, parseDebugfsStat } from './oracles.js';
import { walk, type WalkedNode } from './walk.js';
import { execFileSync } from 'node:child_process';

const EXT_FIXTURES = ['ext4', 'ext4-1k', 'ext4-nocsum', 'ext3', 'ext2', 'ext4-metabg', 'ext4-bigalloc', 'ext4-recover'];
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function withFs<T>(path: string, fn: (fs: FileSystem) => Promise<T>): Promise<T> {
  const reader = await openImage(path);
  try {
    return await fn(await mountView(new DiskView(reader, '/dev/sda')));
  } finally {
    await reader.close();
  }
}

/** Stat fields debugfs prints, as our Stat gives them. */
function timesOf(st: Stat, large: boolean): Record<string, { lo: number; extra?: number }> {
  const t = (x: { sec: number; nsec: number }) => ({ lo: ((x.sec % 2 ** 32) + 2 ** 32) % 2 ** 32, ...(large ? { extra: ((x.nsec << 2) | Math.floor(x.sec / 2 ** 32) & 3) >>> 0 } : {}) });
  return { c: t(st.ctime), a: t(st.atime), m: t(st.mtime), ...(st.crtime ? { cr: t(st.crtime) } : {}) };
}

const INLINE_DATA_FL = 0x10000000;
/**
 * debugfs 1.47 dumps an inline-data file's whole inline area (60 bytes and up), not i_size bytes;
 * the file is the first i_size of them, and the rest must be zeros.
 */
function oracleBytes(b: Uint8Array, size: number, flags: number): Uint8Array {
  if (!(flags & INLINE_DATA_FL) || b.length <= size) return b;
  expect(b.subarray(size).every((x) => x === 0)).toBe(true);
  return b.subarray(0, size);
}

/** Compares a whole walked tree with debugfs on the raw image: listings, stats and every file's bytes. */
async function compareWithDebugfs(raw: string, nodes: WalkedNode[], contents: Map<string, string>, dir: string): Promise<void> {
  const dirs = nodes.filter((n) => n.entries);
  const lsOut = debugfsBatch(raw, dirs.map((n) => `ls -l ${dq(n.path)}`), dir);
  dirs.forEach((n, i) => {
    const theirs = parseDebugfsLs(lsOut[i]).filter((e) => e.name !== '.' && e.name !== '..');
    const byPath = new Map(nodes.map((x) => [x.path, x.stat]));
    const mine = n.entries!.map((e) => {
      const st = byPath.get(n.path === '/' ? `/${e.name}` : `${n.path}/${e.name}`)!;
      return { ino: e.ino, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, name: e.name };
    });
    expect(mine, n.path).toEqual(theirs);
  });
  const stats = debugfsBatch(raw, nodes.map((n) => `stat ${dq(n.path)}`), dir);
  nodes.forEach((n, i) => {
    const s = parseDebugfsStat(stats[i]);
    const large = Object.values(s.times).some((t) => t.extra !== undefined);
    expect({ ino: n.stat.ino, perm: n.stat.mode & 0o7777, uid: n.stat.uid, gid: n.stat.gid, size: n.stat.size, links: n.stat.nlink, blocks: n.stat.blocks, times: timesOf(n.stat, large) }, n.path).toEqual({
      ino: s.ino,
      perm: s.perm,
      uid: s.uid,
      gid: s.gid,
      size: s.size,
      links: s.links,
      blocks: s.blockcount,
      times: s.times,
    });
  });
  // Every file's bytes and every link's target through one rdump; `cat` on the files outside the big directory too.
  const out = join(dir, `rdump-${Math.random().toString(36).slice(2)}`);
  mkdirSync(out);
  debugfsBatch(raw, [`rdump / ${out}`], dir);
  const statOf = new Map(nodes.map((n, i) => [n.path, parseDebugfsStat(stats[i])]));
  for (const n of nodes) {
    const host = join(out, n.path);
    if (n.stat.type === 'file') expect(contents.get(n.path), n.path).toBe(sha(oracleBytes(readFileSync(host), n.stat.size, statOf.get(n.path)!.flags)));
    if (n.stat.type === 'symlink') {
      expect(contents.get(n.path), n.path).toBe(sha(new TextEncoder().encode(readlinkSync(host))));
      const fast = statOf.get(n.path)!.fastLink;
      if (fast !== undefined) expect(contents.get(n.path), n.path).toBe(sha(new TextEncoder().encode(fast)));
    }
  }
  const cats = nodes.filter((n) => n.stat.type === 'file' && !n.path.startsWith('/big/'));
  const catOut = cats.map((n) => execFileSync('debugfs', ['-R', `cat ${dq(n.path)}`, raw], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 }));
  cats.forEach((n, i) => expect(contents.get(n.path), n.path).toBe(sha(oracleBytes(catOut[i], n.stat.size, statOf.get(n.path)!.flags))));
}

async function contentsOf(fs: FileSystem, nodes: WalkedNode[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const n of nodes) {
    if (n.stat.type === 'file') {
      const h = createHash('sha256');
      for await (const chunk of fs.createReadStream(n.path, { chunkSize: (1 << 20) + 17 })) h.update(chunk);
      m.set(n.path, h.digest('hex'));
    } else if (n.stat.type === 'symlink') {
      m.set(n.path, sha(new TextEncoder().encode(await fs.readlink(n.path))));
    }
  }
  return m;
}

describeDebugfs('ext2/3/4 files, listings and stats agree with debugfs', () => {
  const dir = workDir('guest-fs-ext');
  for (const name of EXT_FIXTURES) {
    it(name, async () => {
      const raw = fsFixtureAs(name, 'raw', 'raw', dir);
      const base = await withFs(raw, async (fs) => {
        const nodes = await walk(fs);
        const contents = await contentsOf(fs, nodes);
        await compareWithDebugfs(raw, nodes, contents, dir);
        expect(fs.warnings.filter((w) => !w.includes('journal needs recovery'))).toEqual([]);
        return { nodes: nodes.map((n) => [n.path, n.stat, n.entries]), contents: [...contents] };
      });
      expect(base.nodes.length).toBeGreaterThan(600);
      for (const [format, ext] of SOURCE_FORMATS.filter(([f]) => f !== 'raw')) {
        const again = await withFs(fsFixtureAs(name, format, ext, dir), async (fs) => {
          const nodes = await walk(fs);
          return { nodes: nodes.map((n) => [n.path, n.stat, n.entries]), contents: [...(await contentsOf(fs, nodes))] };
        });
        expect(again, format).toEqual(base);
      }
    }, 120_000);
  }
});

describeDebugfs('the real-world ext2 samples list exactly as debugfs lists them', () => {
  const dir = workDir('guest-fs-ext-real');
  for (const name of ['ext2-fs.qcow2', 'ext2-fs.vmdk']) {
    it(name, async () => {
      const raw = join(dir, `${name}.raw`);
      execFileSync('qemu-img', ['convert', '-O', 'raw', realWorld(name), raw], { stdio: 'ignore' });
      await withFs(realWorld(name), async (fs) => {
        expect(fs.type).toBe('ext2');
        const nodes = await walk(fs);
        expect(nodes.map((n) => n.path)).toContain('/passwords.txt');
        await compareWithDebugfs(raw, nodes, await contentsOf(fs, nodes), dir);
        expect(fs.warnings).toEqual([]);
      });
    });
  }
});
