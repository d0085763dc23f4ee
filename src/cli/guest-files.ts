/**
 * `guestkit ls`, `cat` and `copy-out`: files inside a guest's filesystems, as virt-ls, virt-cat and
 * virt-copy-out show them, picked with `-m DEVICE[:MOUNTPOINT]` as guestfish does.
 */
import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ConfinementError, LimitExceededError, UsageError } from '../errors.js';
import { mountTable, parseMountSpec, type MountTable } from '../guest/fs/mount.js';
import { joinGuestPath, splitGuestPath } from '../guest/fs/path.js';
import type { FileSystem, Stat } from '../guest/fs/types.js';
import { openGuest } from '../guest/guest.js';

export interface GuestFileOptions {
  mount?: string[];
  format?: string;
  allowOutside?: boolean;
  long?: boolean;
  recursive?: boolean;
  force?: boolean;
}

/** How deep -R and copy-out descend: far beyond real trees, and a stop for a directory cycle made of corrupt metadata. */
export const MAX_TREE_DEPTH = 512;

/** Splits `IMAGE... PATH [DEST]`: the last `tail` arguments are guest/host paths. */
function split(args: string[], tail: number, usage: string): { images: string[]; rest: string[] } {
  if (args.length < tail + 1) throw new UsageError(`usage: ${usage}`);
  return { images: args.slice(0, -tail), rest: args.slice(-tail) };
}

async function withTable<T>(images: string[], opts: GuestFileOptions, fn: (t: MountTable) => Promise<T>): Promise<T> {
  const guest = await openGuest(images, { format: opts.format, allowOutside: opts.allowOutside });
  try {
    const table = await mountTable(guest, (opts.mount ?? []).map(parseMountSpec));
    const r = await fn(table);
    for (const m of table.mounts) for (const w of m.fs.warnings) process.stderr.write(`guestkit: warning: ${w}\n`);
    return r;
  } finally {
    await guest.close();
  }
}

/** Writes a chunk to stdout and waits when the pipe is full: the read loop's backpressure. */
async function out(s: string | Uint8Array): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((res) => process.stdout.once('drain', res));
}

const TYPE_CHAR: Record<string, string> = { directory: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', file: '-' };

/** ls -l's mode column: type letter, rwx triplets with setuid/setgid/sticky folded in. */
export function modeString(st: Stat): string {
  const m = st.mode;
  const trip = (shift: number, special: number, ch: string) => {
    const r = m & (4 << shift) ? 'r' : '-';
    const w = m & (2 << shift) ? 'w' : '-';
    const x = m & (1 << shift);
    const s = m & special;
    return r + w + (s ? (x ? ch : ch.toUpperCase()) : x ? 'x' : '-');
  };
  return (TYPE_CHAR[st.type] ?? '?') + trip(6, 0o4000, 's') + trip(3, 0o2000, 's') + trip(0, 0o1000, 't');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ls's date: "Mon dd HH:MM" within six months of now, else "Mon dd  YYYY" (GNU ls, in UTC). */
export function lsDate(sec: number, now = Date.now() / 1000): string {
  const d = new Date(sec * 1000);
  if (Number.isNaN(d.getTime())) return '?';
  const head = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')}`;
  const recent = Math.abs(now - sec) < 182.5 * 86400;
  return recent ? `${head} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}` : `${head}  ${d.getUTCFullYear()}`;
}

interface Row {
  st: Stat;
  name: string;
  target?: string;
}

/** ls -l lines with ls's right-aligned numeric columns. */
function longLines(rows: Row[]): string {
  const w = (f: (r: Row) => string) => Math.max(0, ...rows.map((r) => f(r).length));
  const wl = w((r) => String(r.st.nlink));
  const wu = w((r) => String(r.st.uid));
  const wg = w((r) => String(r.st.gid));
  const ws = w((r) => String(r.st.size));
  return rows
    .map((r) => `${modeString(r.st)} ${String(r.st.nlink).padStart(wl)} ${String(r.st.uid).padStart(wu)} ${String(r.st.gid).padStart(wg)} ${String(r.st.size).padStart(ws)} ${lsDate(r.st.mtime.sec)} ${r.name}${r.target !== undefined ? ` -> ${r.target}` : ''}\n`)
    .join('');
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const child = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

async function row(fs: FileSystem, path: string, name: string): Promise<Row> {
  const st = await fs.lstat(path);
  return { st, name, ...(st.type === 'symlink' ? { target: await fs.readlink(path) } : {}) };
}

export async function runLs(args: string[], opts: GuestFileOptions): Promise<void> {
  const { images, rest } = split(args, 1, 'guestkit ls [-l] [-R] [-m DEV[:MP]] IMAGE... PATH');
  await withTable(images, opts, async (table) => {
    const { fs, inner, mountpoint } = table.locate(rest[0]);
    const shown = (p: string) => (mountpoint === '/' ? p : p === '/' ? mountpoint : `${mountpoint}${p}`);
    const start = await fs.realpath(inner);
    if (!opts.recursive) {
      const st = await fs.stat(inner);
      if (st.type !== 'directory') {
        await out(opts.long ? longLines([await row(fs, inner, rest[0])]) : `${rest[0]}\n`);
        return;
      }
      const entries = (await fs.readdir(start)).sort(byName);
      if (!opts.long) await out(entries.map((e) => `${e.name}\n`).join(''));
      else await out(longLines(await Promise.all(entries.map((e) => row(fs, child(start, e.name), e.name)))));
      return;
    }
    // -R: every path below, depth first and sorted, as virt-ls -R prints them (full paths).
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > MAX_TREE_DEPTH) throw new LimitExceededError(`${shown(dir)} is more than ${MAX_TREE_DEPTH} directories deep`, { file: fs.device, field: 'directory depth' });
      const entries = (await fs.readdir(dir)).sort(byName);
      // Columns line up within each directory's entries, as ls -lR aligns them.
      const lines = opts.long
        ? longLines(await Promise.all(entries.map((e) => row(fs, child(dir, e.name), shown(child(dir, e.name)))))).split('\n')
        : entries.map((e) => shown(child(dir, e.name)));
      for (let i = 0; i < entries.length; i++) {
        await out(`${lines[i]}\n`);
        if (entries[i].type === 'directory') await walk(child(dir, entries[i].name), depth + 1);
      }
    };
    await walk(start, 0);
  });
}

export async function runCat(args: string[], opts: GuestFileOptions): Promise<void> {
  const { images, rest } = split(args, 1, 'guestkit cat [-m DEV[:MP]] IMAGE... PATH');
  await withTable(images, opts, async (table) => {
    const { fs, inner } = table.locate(rest[0]);
    for await (const chunk of fs.createReadStream(inner)) await out(chunk);
  });
}

/** A guest name as one host path component: anything that could leave DEST or mean something else is refused. */
export function hostName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || (process.platform === 'win32' && /[\\:]/.test(name))) {
    throw new ConfinementError(`guest file name ${JSON.stringify(name)} cannot be written as a host file name`);
  }
  return name;
}

/** Opens flags for a new file: never through a symlink, never over an existing file. */
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

async function prepare(path: string, force: boolean): Promise<void> {
  const existing = await fsp.lstat(path).catch(() => undefined);
  if (!existing) return;
  if (!force) throw new UsageError(`${path} exists; use --force to overwrite`);
  if (existing.isDirectory()) throw new UsageError(`${path} is a directory on the host; not replaced`);
  await fsp.unlink(path); // a host symlink is removed, never followed
}

async function copyFile(fs: FileSystem, src: string, dest: string, st: Stat, force: boolean): Promise<void> {
  await prepare(dest, force);
  const fh = await fsp.open(dest, CREATE, st.mode & 0o777);
  try {
    for await (const chunk of fs.createReadStream(src)) await fh.write(chunk);
    await fh.utimes(st.atime.sec, st.mtime.sec);
  } finally {
    await fh.close();
  }
}

async function makeDir(dest: string): Promise<void> {
  try {
    await fsp.mkdir(dest, 0o755);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // An existing host symlink (or a case-insensitive host's twin name) is never descended into.
    const st = await fsp.lstat(dest);
    if (!st.isDirectory()) throw new ConfinementError(`${dest} exists on the host and is not a directory; not written through`);
  }
}

export async function runCopyOut(args: string[], opts: GuestFileOptions): Promise<void> {
  const { images, rest } = split(args, 2, 'guestkit copy-out [-m DEV[:MP]] IMAGE... PATH DEST');
  const [guestPath, dest] = rest;
  const destSt = await fsp.stat(dest).catch(() => undefined);
  if (!destSt?.isDirectory()) throw new UsageError(`${dest} is not a directory (copy-out copies into an existing host directory, as virt-copy-out does)`);
  await withTable(images, opts, async (table) => {
    const { fs, inner } = table.locate(guestPath);
    const real = await fs.realpath(inner);
    const parts = splitGuestPath(real);
    const top = parts.length ? parts[parts.length - 1] : undefined;
    const copy = async (src: string, host: string, depth: number): Promise<void> => {
      const st = await fs.lstat(src);
      if (st.type === 'directory') {
        if (depth > MAX_TREE_DEPTH) throw new LimitExceededError(`${src} is more than ${MAX_TREE_DEPTH} directories deep`, { file: fs.device, field: 'directory depth' });
        await makeDir(host);
        for (const e of await fs.readdir(src)) await copy(child(src, e.name), join(host, hostName(e.name)), depth + 1);
      } else if (st.type === 'file') {
        await copyFile(fs, src, host, st, Boolean(opts.force));
      } else if (st.type === 'symlink') {
        // Kept as a link with the guest's target text (tar does the same); nothing is ever written through it.
        await prepare(host, Boolean(opts.force));
        await fsp.symlink(await fs.readlink(src), host);
      } else {
        process.stderr.write(`guestkit: warning: ${src}: ${st.type} not copied\n`);
      }
    };
    if (top === undefined) {
      // The root's contents go straight into DEST.
      for (const e of await fs.readdir('/')) await copy(joinGuestPath([e.name]), join(dest, hostName(e.name)), 1);
    } else await copy(real, join(dest, hostName(top)), 0);
  });
}
