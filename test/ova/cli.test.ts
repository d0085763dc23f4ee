import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { guestkit } from '../helpers/cli.js';
import { workDir } from '../helpers/work.js';
import { realWorld } from '../helpers/real-world.js';

const fx = (n: string) => fileURLToPath(new URL(`../../fixtures/ova/${n}`, import.meta.url));
const oracle = (n: string) => readFileSync(fx('ORACLE.sha256'), 'utf8').split('\n').find((l) => l.endsWith(n))!.split(' ')[0];

describe('guestkit on an OVA', () => {
  it('info shows the VM and its disks with controller/unit, in text and JSON', () => {
    const text = guestkit(['info', fx('web01.ova')]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('file format: ova (OVF 1.0)');
    expect(text.stdout).toContain('virtual machine: web01');
    expect(text.stdout).toContain('memory: 2 GiB (2147483648 bytes)');
    expect(text.stdout).toContain('firmware: efi');
    expect(text.stdout).toContain('nic: Network adapter 1 on VM Network (VmxNet3)');
    expect(text.stdout).toContain('attached: web01 scsi controller 3 unit 1');
    const json = JSON.parse(guestkit(['info', '--output', 'json', fx('web01.ova')]).stdout);
    expect(json.format).toBe('ova');
    expect(json.ovf.systems[0]).toMatchObject({ name: 'web01', osType: 'ubuntu64Guest', cpus: 2, memory: 2147483648 });
    expect(json.disks.map((d: { capacity: number }) => d.capacity)).toEqual([2097152, 1048576]);
  });

  it('info of the real VirtualBox export shows its VM', () => {
    const r = guestkit(['info', realWorld('virtualbox-export-stub.ova')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('os: Ubuntu_64 (OVF id 94)');
    expect(r.stdout).toContain('attached: testserver sata controller 5 unit 0');
  });

  it('info --disk N reads one disk inside the OVA', () => {
    const r = guestkit(['info', '--output', 'json', '--disk', '1', fx('web01.ova')]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'vmdk', 'virtual-size': 1048576 });
  });

  it('convert vm.ova OUTDIR/ writes every disk, equal to qemu-img reading the extracted members', () => {
    const dir = workDir('ova-cli');
    const r = guestkit(['convert', fx('web01-chunked.ova'), `${dir}/out/`]);
    expect(r.status, r.stderr).toBe(0);
    for (const [id, want] of [['vmdisk1', 'web01-disk1.raw'], ['vmdisk2', 'web01-disk2.raw']]) {
      const out = join(dir, 'out', `${id}.raw`);
      expect(existsSync(out)).toBe(true);
      expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(oracle(want!));
    }
  });

  it('a multi-disk OVA without --disk is a usage error naming the disks', () => {
    const r = guestkit(['map', fx('web01.ova')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('the OVA has 2 disks (vmdisk1, vmdisk2); pick one with --disk N|NAME');
    const ok = guestkit(['map', '--output', 'json', '--disk', 'vmdisk2', fx('web01.ova')]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toContainEqual(expect.objectContaining({ start: 524288, length: 65536, data: true }));
  });

  it('from a pipe: one forward pass, each disk equal to qemu-img reading the extracted member', () => {
    const dir = workDir('ova-pipe');
    for (const [ova, disk, want] of [['web01.ova', 'vmdisk2', 'web01-disk2.raw'], ['web01-pax.ova', '0', 'web01-disk1.raw'], ['web01-gzip.ova', '0', 'web01-disk1.raw']]) {
      const out = join(dir, `${ova}-${disk}.raw`);
      const r = guestkit(['convert', '--disk', disk!, '-', out], { input: readFileSync(fx(ova!)) });
      expect(r.status, r.stderr).toBe(0);
      expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(oracle(want!));
    }
  });

  it('from a pipe: a disk before the descriptor, or a chunked disk, is refused saying why', () => {
    const dir = workDir('ova-pipe-order');
    execFileSync('tar', ['-xf', fx('web01.ova'), '-C', dir]);
    execFileSync('tar', ['--format=ustar', '-cf', join(dir, 'late.ova'), '-C', dir, 'web01-disk2.vmdk', 'web01.ovf', 'web01-disk1.vmdk']);
    const late = guestkit(['convert', '--disk', '1', '-', join(dir, 'x.raw')], { input: readFileSync(join(dir, 'late.ova')) });
    expect(late.status).not.toBe(0);
    expect(late.stderr).toContain('comes before the OVF descriptor');
    const chunked = guestkit(['convert', '--disk', '0', '-', join(dir, 'y.raw')], { input: readFileSync(fx('web01-chunked.ova')) });
    expect(chunked.stderr).toContain('split into chunks');
  });

  it('compare --disk: a disk inside the OVA against its conversion', () => {
    const dir = workDir('ova-compare');
    const out = join(dir, 'd2.qcow2');
    expect(guestkit(['convert', '--disk', 'vmdisk2', '-O', 'qcow2', fx('web01.ova'), out]).status).toBe(0);
    const same = guestkit(['compare', '--disk', 'vmdisk2', fx('web01.ova'), out]);
    expect(same.status, same.stderr).toBe(0);
    expect(same.stdout).toContain('Images are identical.');
    const other = guestkit(['compare', '--disk', '0', fx('web01.ova'), out]);
    expect(other.status).toBe(1);
  });
});
