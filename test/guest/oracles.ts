/**
 * Oracles of the guest-wing tests: util-linux's sfdisk and blkid, and qemu-img to give each fixture
 * in every source format. Like qemu-img (test/helpers/oracle.ts), a missing tool is a visible skip
 * locally and a failure under GUESTKIT_REQUIRE_ORACLE=1 (CI).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describeWithTool, QEMU_IMG } from '../helpers/oracle.js';
import { GUEST_FIXTURES } from './helpers.js';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
export const HAS_SFDISK = has('sfdisk');
export const HAS_BLKID = has('blkid');
export const HAS_E2FSCK = has('e2fsck');
export const HAS_QEMU_IMG = Boolean(QEMU_IMG);

export const describeSfdisk = (name: string, fn: () => void): void => describeWithTool('sfdisk (util-linux fdisk)', HAS_SFDISK && HAS_QEMU_IMG, name, fn);
export const describeBlkid = (name: string, fn: () => void): void => describeWithTool('blkid (util-linux)', HAS_BLKID && HAS_QEMU_IMG, name, fn);
export const describeE2fsck = (name: string, fn: () => void): void => describeWithTool('e2fsck (e2fsprogs)', HAS_E2FSCK && HAS_QEMU_IMG, name, fn);
export const describeQemu = (name: string, fn: () => void): void => describeWithTool('qemu-img', HAS_QEMU_IMG, name, fn);

/** The source formats every fixture is checked in: qemu-img's names and the extension. */
export const SOURCE_FORMATS = [
  ['raw', 'raw'],
  ['qcow2', 'qcow2'],
  ['vmdk', 'vmdk'],
  ['vpc', 'vhd'],
  ['vdi', 'vdi'],
] as const;

/** The fixture converted by qemu-img into `format` inside `dir`; returns its path. */
export function fixtureAs(name: string, format: string, ext: string, dir: string): string {
  const out = join(dir, `${name}.${ext}`);
  const opts = format === 'vpc' ? ['-o', 'subformat=fixed,force_size=on'] : [];
  execFileSync(QEMU_IMG ?? 'qemu-img', ['convert', '-f', 'qcow2', '-O', format, ...opts, join(GUEST_FIXTURES, `${name}.qcow2`), out], { stdio: 'ignore' });
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function sfdiskJson(path: string): any {
  return JSON.parse(execFileSync('sfdisk', ['--json', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).partitiontable;
}

/** `blkid -p -o export --offset N --size S FILE` as a record (empty when blkid finds nothing). */
export function blkid(path: string, offset = 0, size?: number): Record<string, string> {
  const args = ['-p', '-o', 'export', '--offset', String(offset), ...(size !== undefined ? ['--size', String(size)] : []), path];
  const r = spawnSync('blkid', args, { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return out;
}
