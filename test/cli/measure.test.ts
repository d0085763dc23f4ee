import { expect, it } from 'vitest';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImg } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { guestkit } from '../helpers/cli.js';

describeOracle('measure', () => {
  const dir = workDir('measure');
  const src = join(dir, 'src.raw');
  const MiB = 1024 * 1024;
  const data = new Uint8Array(24 * MiB);
  data.set(pseudoRandom(3 * MiB, 5), 1 * MiB);
  data.set(pseudoRandom(MiB, 6), 20 * MiB);
  writeFileSync(src, data);

  for (const fmt of ['raw', 'qcow2', 'vmdk', 'vhd', 'vdi']) {
    it(`-O ${fmt}: required is the length of the file convert then writes, and never above fully-allocated`, () => {
      const m = guestkit(['measure', '-O', fmt, '--output', 'json', src]);
      expect(m.status, m.stderr).toBe(0);
      const r = JSON.parse(m.stdout);
      const out = join(dir, `out.${fmt}`);
      expect(guestkit(['convert', '-O', fmt, src, out]).status).toBe(0);
      // The length, holes included: what a block device or `ulimit -f` sized from it must hold.
      expect(statSync(out).size).toBe(r.required);
      expect(r.required).toBeLessThanOrEqual(r['fully-allocated']);
      expect(r['fully-allocated']).toBeGreaterThanOrEqual(data.length);
    });
  }

  it('agrees with qemu-img measure for a qcow2 source within the metadata difference', () => {
    const q = join(dir, 'src.qcow2');
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', src, q);
    const ours = JSON.parse(guestkit(['measure', '-O', 'qcow2', '--output', 'json', q]).stdout);
    const theirs = JSON.parse(qemuImg('measure', '-O', 'qcow2', '--output=json', q));
    expect(Math.abs(ours.required - theirs.required)).toBeLessThan(1 * MiB);
    expect(Math.abs(ours['fully-allocated'] - theirs['fully-allocated'])).toBeLessThan(1 * MiB);
    const human = guestkit(['measure', '-O', 'qcow2', '--size', '1G']);
    expect(human.stdout).toMatch(/^required size: \d+\nfully allocated size: \d+\n$/);
  });
});
