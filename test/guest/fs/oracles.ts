/**
 * Oracles of the filesystem tests: e2fsprogs' debugfs for ext, mtools for FAT. Like qemu-img
 * (test/helpers/oracle.ts), a missing tool is a visible skip locally and a failure under
 * GUESTKIT_REQUIRE_ORACLE=1 (CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describeWithTool, QEMU_IMG } from '../../helpers/oracle.js';
import { HAS_QEMU_IMG } from '../oracles.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
export const HAS_DEBUGFS = has('debugfs');
export const HAS_MTOOLS = has('mdir') && has('mtype') && has('mcopy');

export const describeDebugfs = (name: string, fn: () => void): void => describeWithTool('debugfs (e2fsprogs)', HAS_DEBUGFS && HAS_QEMU_IMG, name, fn);
export const describeMtools = (name: string, fn: () => void): void => describeWithTool('mtools', HAS_MTOOLS && HAS_QEMU_IMG, name, fn);

/** Runs many debugfs commands in one process (-f); returns each command's output. */
export function debugfsBatch(image: string, commands: string[], dir: string): string[] {
  const file = join(dir, `cmds-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, commands.map((c) => `${c}\n`).join(''));
  const out = execFileSync('debugfs', ['-f', file, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  // Each command's output follows its echo "debugfs: CMD".
  const parts = out.split(/^debugfs: /m).slice(1);
  if (parts.length !== commands.length) throw new Error(`debugfs answered ${parts.length} of ${commands.length} commands`);
  return parts.map((p) => p.slice(p.indexOf('\n') + 1));
}

/** Quotes a path for a debugfs command line (it splits on blanks and honours double quotes). */
export const dq = (p: string): string => `"${p}"`;

export interface DebugfsLsEntry {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  name: string;
}

/** debugfs prints bytes above 0x7f as \\xNN; the name is those bytes as UTF-8. */
function unescapeDebugfs(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = /^\\x([0-9a-f]{2})/.exec(s.slice(i, i + 4));
    if (m) {
      bytes.push(parseInt(m[1], 16));
      i += 3;
    } else bytes.push(...new TextEncoder().encode(s[i]));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** `ls -l` lines: inode, octal mode, (dirent type), uid, gid, size, date, time, name. */
export function parseDebugfsLs(text: string): DebugfsLsEntry[] {
  const out: DebugfsLsEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+\(\d+\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\d\d:\d\d (.*)$/.exec(line);
    if (m) out.push({ ino: +m[1], mode: parseInt(m[2], 8), uid: +m[3], gid: +m[4], size: +m[5], name: unescapeDebugfs(m[6]) });
  }
  return out;
}

export interface DebugfsStat {
  ino: number;
  perm: number;
  type: string;
  uid: number;
  gid: number;
  size: number;
  links: number;
  blockcount: number;
  /** Raw seconds word and extra word as debugfs prints them (extra undefined for 128-byte inodes). */
  times: Record<string, { lo: number; extra?: number }>;
  fastLink?: string;
  flags: number;
}

export function parseDebugfsStat(text: string): DebugfsStat {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`debugfs stat: no ${re} in\n${text}`);
    return Number(m[1]);
  };
  const times: DebugfsStat['times'] = {};
  for (const m of text.matchAll(/^\s*(c|a|m|cr)time: 0x([0-9a-f]+)(?::([0-9a-f]+))?/gm)) {
    times[m[1]] = { lo: parseInt(m[2], 16), ...(m[3] !== undefined ? { extra: parseInt(m[3], 16) } : {}) };
  }
  const link = /Fast link dest: "(.*)"$/m.exec(text);
  return {
    ino: num(/Inode:\s*(\d+)/),
    perm: parseInt(/Mode:\s*(\d+)/.exec(text)![1], 8),
    type: /Type:\s*(\S+)/.exec(text)![1],
    uid: num(/User:\s*(\d+)/),
    gid: num(/Group:\s*(\d+)/),
    size: num(/Size:\s*(\d+)\n/),
    links: num(/Links:\s*(\d+)/),
    blockcount: num(/Blockcount:\s*(\d+)/),
    times,
    flags: parseInt(/Flags: 0x([0-9a-f]+)/.exec(text)![1], 16),
    ...(link ? { fastLink: link[1] } : {}),
  };
}

export const FS_FIXTURES = fileURLToPath(new URL('../../../fixtures/guest/fs/', import.meta.url));

/** A fixture of fixtures/guest/fs converted by qemu-img into `format` inside `dir` (cached per dir). */
export function fsFixtureAs(name: string, format: string, ext: string, dir: string): string {
  const out = join(dir, `${name}.${ext}`);
  if (existsSync(out)) return out;
  const opts = format === 'vpc' ? ['-o', 'subformat=fixed,force_size=on'] : [];
  execFileSync(QEMU_IMG ?? 'qemu-img', ['convert', '-f', 'qcow2', '-O', format, ...opts, join(FS_FIXTURES, `${name}.qcow2`), out], { stdio: 'ignore' });
  return out;
}

const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', TZ: 'UTC' };

/** `mdir -b -/`: every path below the root, directories with a trailing slash, as mtools names them. */
export function mdirPaths(image: string): string[] {
  const out = execFileSync('mdir', ['-b', '-/', '-i', image, '::'], { encoding: 'utf8', env: MTOOLS_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n').filter((l) => l.startsWith('::/')).map((l) => l.slice(2));
}

export interface MdirEntry {
  name: string;
  directory: boolean;
  size: number;
  /** YYYY-MM-DD HH:MM as stored. */
  mtime: string;
}

/** `mdir -a ::DIR`: one directory's entries (long name when there is one). */
export function mdir(image: string, dir: string): MdirEntry[] {
  const out = execFileSync('mdir', ['-a', '-i', image, `::${dir}`], { encoding: 'utf8', env: MTOOLS_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const entries: MdirEntry[] = [];
  for (const line of out.split('\n')) {
    const m = /^(.{8}) (.{3}) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +(\d+):(\d\d)(?: {1,2}(.*))?$/.exec(line);
    if (!m) continue;
    const base = m[1].trimEnd();
    const ext = m[2].trimEnd();
    if (base === '.' || base === '..') continue;
    const name = m[7] && m[7].trim() !== '' ? m[7] : ext ? `${base}.${ext}` : base;
    entries.push({ name, directory: m[3] === '<DIR>', size: m[3] === '<DIR>' ? 0 : +m[3], mtime: `${m[4]} ${m[5].padStart(2, '0')}:${m[6]}` });
  }
  return entries;
}

/** `mtype -i IMG ::PATH`: the file's bytes. */
export function mtype(image: string, path: string): Buffer {
  return execFileSync('mtype', ['-i', image, `::${path}`], { env: MTOOLS_ENV, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}
