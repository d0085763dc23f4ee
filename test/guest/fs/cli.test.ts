import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lsDate, modeString } from '../../../src/cli/guest-files.js';
import type { Stat } from '../../../src/guest/fs/types.js';
import { guestkit, guestkitBinary } from '../../helpers/cli.js';
import { workDir } from '../../helpers/work.js';
import { GUEST_FIXTURES } from '../helpers.js';
import { FS_FIXTURES } from './oracles.js';

const EXT4 = join(FS_FIXTURES, 'ext4.qcow2');
const MBR = join(GUEST_FIXTURES, 'mbr.qcow2');

const st = (mode: number, type: Stat['type']): Stat => {
  const t = { sec: 0, nsec: 0 };
  return { ino: 1, type, mode, uid: 0, gid: 0, size: 0, nlink: 1, atime: t, mtime: t, ctime: t };
};

describe('ls -l columns', () => {
  it('mode strings fold setuid, setgid and sticky bits as ls does', () => {
    expect(modeString(st(0o104755, 'file'))).toBe('-rwsr-xr-x');
    expect(modeString(st(0o102644, 'file'))).toBe('-rw-r-Sr--');
    expect(modeString(st(0o41777, 'directory'))).toBe('drwxrwxrwt');
    expect(modeString(st(0o120777, 'symlink'))).toBe('lrwxrwxrwx');
    expect(modeString(st(0o10644, 'fifo'))).toBe('prw-r--r--');
  });
  it('dates: time of day within six months, the year otherwise', () => {
    const now = Date.UTC(2026, 11, 8) / 1000;
    expect(lsDate(Date.UTC(2026, 10, 14, 22, 13) / 1000, now)).toBe('Nov 14 22:13');
    expect(lsDate(Date.UTC(2001, 1, 3, 4, 5) / 1000, now)).toBe('Feb  3  2001');
  });
});

describe('guestkit ls, cat, copy-out', () => {
  it('have help with examples', () => {
    for (const cmd of ['ls', 'cat', 'copy-out']) {
      const h = guestkit([cmd, '--help']);
      expect(h.status, cmd).toBe(0);
      expect(h.stdout, cmd).toMatch(/-m, --mount <dev\[:mountpoint\]>[\s\S]*Examples:/);
    }
  });

  it('ls lists a directory sorted, -l like ls -l, -R every path below', () => {
    const r = guestkit(['ls', EXT4, '/small']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('t1\nt2\nt3\n');
    const l = guestkit(['ls', '-l', EXT4, '/']);
    expect(l.stdout).toMatch(/^-rwsr-xr-x 1 +0 +0 +108894 \w{3} [ \d]\d +[\d:]+ numbers\.txt$/m);
    expect(l.stdout).toMatch(/^lrwxrwxrwx 1 +0 +0 +9 .* fast-link -> hello\.txt$/m);
    expect(l.stdout).toMatch(/^-rw-r--r-- 1 +0 +0 +1 Feb  3  2001 one-byte$/m);
    expect(l.stdout).toMatch(/^prw-r--r-- .* fifo$/m);
    expect(l.stdout).toMatch(/^drwxr-xr-x +\d+ +123 +456 .* small$/m);
    const rr = guestkit(['ls', '-R', EXT4, '/deep']);
    expect(rr.stdout.split('\n').filter(Boolean).length).toBe(31);
    expect(rr.stdout).toContain(`/deep${'/a'.repeat(30)}/bottom.txt\n`);
  });

  it('cat writes the bytes of a file, through symlinks inside the guest', () => {
    expect(guestkit(['cat', EXT4, '/etc/os-release']).stdout).toContain('ID=guestkit');
    const bin = guestkitBinary(['cat', EXT4, '/random.bin']);
    expect(bin.status).toBe(0);
    expect(bin.stdout.length).toBe(120000);
    const far = guestkitBinary(['cat', EXT4, '/sparse-far']);
    expect(far.stdout.length).toBe(80 * 1024 * 1024);
    expect(far.stdout.subarray(70 * 1024 * 1024, 70 * 1024 * 1024 + 4).toString()).toBe('far\n');
    const loop = guestkit(['cat', EXT4, '/loop-a']);
    expect(loop.status).not.toBe(0);
    expect(loop.stderr).toMatch(/too many levels of symbolic links/);
  });

  it('several filesystems and no -m is an error that lists them; -m picks and mounts', () => {
    const r = guestkit(['ls', MBR, '/']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/several filesystems.*\/dev\/sda1 \(ext4\), \/dev\/sda5 \(vfat\), \/dev\/sda7 \(ext3\)/);
    expect(guestkit(['cat', '-m', '/dev/sda5', MBR, '/f.txt']).stdout).toBe('fat\n');
    const both = guestkit(['ls', '-m', '/dev/sda1', '-m', '/dev/sda5:/boot/efi', MBR, '/boot/efi']);
    expect(both.stdout).toBe('F.TXT\n');
    expect(guestkit(['ls', '-m', '/dev/sda1', '-m', '/dev/sda5:/boot/efi', MBR, '/']).stdout).toContain('hello.txt');
    expect(guestkit(['ls', '-m', '/dev/sdz9', MBR, '/']).stderr).toMatch(/no filesystem on \/dev\/sdz9/);
  });

  it('reads files of a logical volume striped over two disks', () => {
    const r = guestkit(['cat', '-m', '/dev/guestvg/striped', join(GUEST_FIXTURES, 'lvm-a.qcow2'), join(GUEST_FIXTURES, 'lvm-b.qcow2'), '/hello.txt']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^hello from /);
  });

  it('copy-out copies a tree under DEST, keeps guest symlinks as links, never overwrites or follows without --force', () => {
    const dest = workDir('guest-fs-copyout');
    const r = guestkit(['copy-out', EXT4, '/', dest]);
    expect(r.stderr).toMatch(/fifo not copied/);
    expect(readFileSync(join(dest, 'hello.txt'), 'utf8')).toBe('hello, guest\n');
    expect(readlinkSync(join(dest, 'abs-link'))).toBe('/etc/os-release');
    expect(lstatSync(join(dest, 'abs-link')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dest, 'big', 'file-number-600.txt'), 'utf8')).toBe('600\n');
    expect(createHash('sha256').update(readFileSync(join(dest, 'random.bin'))).digest('hex')).toBe(
      createHash('sha256').update(guestkitBinary(['cat', EXT4, '/random.bin']).stdout).digest('hex'),
    );
    expect((lstatSync(join(dest, 'hello.txt')).mode & 0o777).toString(8)).toBe('600');

    const again = guestkit(['copy-out', EXT4, '/hello.txt', dest]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/exists; use --force/);

    // A host symlink where the file goes is replaced, and what it pointed at is left alone.
    const outside = join(workDir('guest-fs-outside'), 'victim');
    writeFileSync(outside, 'untouched');
    const d2 = workDir('guest-fs-copyout2');
    symlinkSync(outside, join(d2, 'hello.txt'));
    expect(guestkit(['copy-out', EXT4, '/hello.txt', d2]).status).not.toBe(0);
    expect(guestkit(['copy-out', '--force', EXT4, '/hello.txt', d2]).status).toBe(0);
    expect(readFileSync(outside, 'utf8')).toBe('untouched');
    expect(lstatSync(join(d2, 'hello.txt')).isSymbolicLink()).toBe(false);

    // A host symlink where a directory goes is never descended into.
    const d3 = workDir('guest-fs-copyout3');
    const target = workDir('guest-fs-target');
    symlinkSync(target, join(d3, 'small'));
    const r3 = guestkit(['copy-out', '--force', EXT4, '/small', d3]);
    expect(r3.status).not.toBe(0);
    expect(existsSync(join(target, 't1'))).toBe(false);
  });
});
