/**
 * convert -B (overlay outputs), -n (into an existing image) and --target-is-zero, driven as a
 * user would and checked against qemu-img doing the same on identical inputs.
 */
import { beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, expectQemuCheckClean, qemuImg, qemuImgStatus, qemuInfoJson, qemuIo, qemuMapEntries, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { guestkit } from '../helpers/cli.js';

const MiB = 1024 * 1024;

function ok(args: string[]): void {
  const r = guestkit(args);
  expect(r.status, r.stderr).toBe(0);
}

/** `fmt` for both when probing would guess wrong (qemu-img probes a fixed VHD, which has no header, as raw). */
function expectSameContent(a: string, b: string, fmt?: string): void {
  const r = qemuImgStatus('compare', ...(fmt ? ['-f', fmt, '-F', fmt] : []), a, b);
  expect(r.status, r.stdout + r.stderr).toBe(0);
}

/** Bytes an image stores itself (depth 0, data). */
function ownData(image: string): number {
  return qemuMapEntries(image)
    .filter((e) => e.depth === 0 && e.data)
    .reduce((n, e) => n + e.length, 0);
}

describeOracle('convert -B: the output is an overlay holding only what differs from its backing image', () => {
  const dir = workDir('convert-B');
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  const full = join(dir, 'full.raw');
  const parent = join(dir, 'parent.vmdk');
  // In beforeAll, not at collection: without qemu-img the suite is skipped, not failed.
  beforeAll(() => {
    qemuImg('create', '-f', 'qcow2', base, '16M');
    qemuIo('qcow2', base, 'write -P 0x11 0 4M', 'write -P 0x22 8M 2M', 'write -P 0x23 15M 1M');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
    // Own data, zeros over base data, and a rewrite of base bytes with the same bytes.
    qemuIo('qcow2', top, 'write -P 0x33 1M 64k', 'write -z 8M 1M', 'write -P 0x44 12M 1M', 'write -P 0x23 15M 64k');
    qemuToRaw(top, full);
    qemuImg('convert', '-O', 'vmdk', base, parent);
  });

  for (const [i, [name, src]] of (
    [
      ['an overlay of the same base', top],
      ['a flat raw copy', full],
    ] as const
  ).entries()) {
    it(`from ${name}: same content as the source through the backing file, checks clean, stores no more than qemu-img`, () => {
      const ours = join(dir, `ours-${i}.qcow2`);
      const theirs = join(dir, `theirs-${i}.qcow2`);
      ok(['convert', '-O', 'qcow2', '-B', 'base.qcow2', src, ours]);
      qemuImg('convert', '-O', 'qcow2', '-B', 'base.qcow2', '-F', 'qcow2', src, theirs);
      expectQemuCheckClean(ours);
      expectSameContent(src, ours);
      expectSameContent(theirs, ours);
      const info = qemuInfoJson(ours);
      expect(info['backing-filename']).toBe('base.qcow2');
      expect(info['backing-filename-format']).toBe('qcow2');
      expect(info['virtual-size']).toBe(16 * MiB);
      expect(ownData(ours)).toBeLessThanOrEqual(ownData(theirs));
      // Only the clusters that differ: 64 KiB at 1M, 1 MiB at 12M (the 8M zeros are zero clusters,
      // the 15M rewrite equals the base).
      expect(ownData(ours)).toBe(64 * 1024 + MiB);
    });
  }

  it('compat=0.10 stores zeros over base data as data clusters (no zero flag in version 2)', () => {
    const out = join(dir, 'v2.qcow2');
    ok(['convert', '-O', 'qcow2', '-o', 'compat=0.10', '-B', 'base.qcow2', '-F', 'qcow2', full, out]);
    expectQemuCheckClean(out);
    expectSameContent(full, out);
    expect(qemuInfoJson(out)['format-specific'].data.compat).toBe('0.10');
  });

  it('-o backing_file= is the same request as -B, and a base in another folder is named relative to the output', () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const out = join(dir, 'sub', 'o.qcow2');
    ok(['convert', '-O', 'qcow2', '-o', 'backing_file=../base.qcow2,backing_fmt=qcow2', full, out]);
    expectQemuCheckClean(out);
    expectSameContent(full, out);
    expect(qemuInfoJson(out)['backing-filename']).toBe('../base.qcow2');
    expect(ownData(out)).toBe(64 * 1024 + MiB);
  });

  for (const [i, opts] of ['', 'zeroed_grain=on', 'subformat=streamOptimized'].entries()) {
    it(`a VMDK delta on a VMDK parent (${opts || 'monolithicSparse'}): zeros over parent data are stored, the rest left to the parent`, () => {
      const out = join(dir, `delta-${i}.vmdk`);
      ok(['convert', '-O', 'vmdk', ...(opts ? ['-o', opts] : []), '-B', 'parent.vmdk', full, out]);
      expectQemuCheckClean(out);
      expectSameContent(full, out);
      expect(qemuInfoJson(out)['backing-filename']).toBe('parent.vmdk');
      // Far less than the 10 MiB of data the flat source holds.
      expect(ownData(out)).toBeLessThanOrEqual(3 * MiB);
    });
  }

  it('refuses formats without backing files, a pipe output, and -B with -n', () => {
    const raw = guestkit(['convert', '-O', 'raw', '-B', 'base.qcow2', full, join(dir, 'x.raw')]);
    expect(raw.status).toBe(2);
    expect(raw.stderr).toMatch(/does not support backing files/);
    const pipe = guestkit(['convert', '-O', 'qcow2', '-B', 'base.qcow2', full, '-']);
    expect(pipe.status).toBe(2);
    expect(pipe.stderr).toMatch(/-B needs an output file/);
    const both = guestkit(['convert', '-n', '-O', 'qcow2', '-B', 'base.qcow2', full, top]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/cannot be combined with -n/);
  });
});

describeOracle('convert -n: into an existing image, as qemu-img convert -n', () => {
  const dir = workDir('convert-n');
  const src = join(dir, 'src.qcow2');
  beforeAll(() => {
    qemuImg('create', '-f', 'qcow2', src, '8M');
    qemuIo('qcow2', src, 'write -P 0x5a 0 1M', 'write -P 0x6b 5M 512k');
  });
  const junk = Buffer.from(pseudoRandom(12 * MiB, 9));

  it('raw target: written in place, its tail past the source kept, byte for byte what qemu-img -n leaves', () => {
    const ours = join(dir, 'ours.raw');
    const theirs = join(dir, 'theirs.raw');
    writeFileSync(ours, junk);
    writeFileSync(theirs, junk);
    ok(['convert', '-n', '-O', 'raw', src, ours]);
    qemuImg('convert', '-n', '-O', 'raw', src, theirs);
    expect(statSync(ours).size).toBe(12 * MiB);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
  });

  it('raw target with --target-is-zero: zero runs are not written, as qemu-img', () => {
    const ours = join(dir, 'z-ours.raw');
    const theirs = join(dir, 'z-theirs.raw');
    qemuImg('create', '-f', 'raw', ours, '10M');
    copyFileSync(ours, theirs);
    ok(['convert', '-n', '--target-is-zero', '-O', 'raw', src, ours]);
    qemuImg('convert', '-n', '--target-is-zero', '-O', 'raw', src, theirs);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    // Holes stay holes: only the 1.5 MiB of data is allocated (plus filesystem rounding).
    expect(statSync(ours).blocks * 512).toBeLessThan(2 * MiB);
  });

  for (const [fmt, createArgs] of [
    ['qcow2', ['-o', 'cluster_size=4k,compat=0.10']],
    ['vmdk', ['-o', 'subformat=twoGbMaxExtentSparse,adapter_type=lsilogic']],
    ['vpc', ['-o', 'subformat=fixed']],
    ['vdi', ['-o', 'static=on']],
  ] as const) {
    it(`${fmt} target made by qemu-img: keeps its layout and size, reads as what qemu-img -n leaves, checks clean`, () => {
      const ext = fmt === 'vpc' ? 'vhd' : fmt;
      const ours = join(dir, `t-ours.${ext}`);
      const theirs = join(dir, `t-theirs.${ext}`);
      for (const t of [ours, theirs]) {
        qemuImg('create', '-f', fmt, ...createArgs, t, '12M');
        // Data past the source's end must survive, as it does with qemu-img.
        qemuIo(fmt, t, 'write -P 0x77 10M 1M', 'write -P 0x78 0 64k');
      }
      const info = (p: string) => qemuInfoJson(p, fmt);
      const before = info(ours);
      const ourInfo = (p: string) => JSON.parse(guestkit(['info', '--output', 'json', p]).stdout);
      const idBefore = ourInfo(ours);
      ok(['convert', '-n', src, ours]);
      qemuImg('convert', '-n', '-O', fmt, src, theirs);
      const after = info(ours);
      expect(after['virtual-size']).toBe(before['virtual-size']);
      expect(after['cluster-size']).toBe(before['cluster-size']);
      expect(after['format-specific']?.data?.compat).toBe(before['format-specific']?.data?.compat);
      expect(after['format-specific']?.data?.['create-type']).toBe(before['format-specific']?.data?.['create-type']);
      expectSameContent(theirs, ours, fmt);
      if (fmt !== 'vpc') expectQemuCheckClean(ours);
      // The identity VirtualBox and differencing children know the disk by survives the rewrite.
      const id = (info: Record<string, any>) => info['format-specific']?.data?.['image-uuid'] ?? info['format-specific']?.data?.uuid;
      if (fmt === 'vdi' || fmt === 'vpc') {
        expect(id(idBefore)).toMatch(/^[0-9a-f]{8}-/);
        expect(id(ourInfo(ours))).toBe(id(idBefore));
      }
    });
  }

  it('refuses a missing or smaller target, a target of another format, one with internal snapshots, and --target-is-zero without -n', () => {
    const missing = guestkit(['convert', '-n', src, join(dir, 'none.qcow2')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/does not exist.*create it first/);
    const small = join(dir, 'small.qcow2');
    qemuImg('create', '-f', 'qcow2', small, '4M');
    const s = guestkit(['convert', '-n', src, small]);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/smaller than input/);
    const other = guestkit(['convert', '-n', '-O', 'vdi', src, small]);
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/holds a qcow2 image, not vdi/);
    expect(qemuImgStatus('check', small).status).toBe(0); // untouched
    // Internal snapshots live beside the content: a rewrite would drop them, so -n refuses.
    const snap = join(dir, 'snap.qcow2');
    qemuImg('create', '-f', 'qcow2', snap, '16M');
    qemuImg('snapshot', '-c', 'before', snap);
    const sn = guestkit(['convert', '-n', src, snap]);
    expect(sn.status).toBe(1);
    expect(sn.stderr).toMatch(/internal snapshot.*would drop/);
    expect(qemuImg('snapshot', '-l', snap)).toMatch(/before/);
    const tz = guestkit(['convert', '--target-is-zero', src, join(dir, 'tz.raw')]);
    expect(tz.status).toBe(2);
    expect(tz.stderr).toMatch(/--target-is-zero requires use of -n flag/);
  });

  it('refuses to rewrite a device as an image file: only raw is written into a device in place', () => {
    // /dev/null reads as empty (raw content): a character device is no image, and is refused
    // before it is opened, so no temporary file in /dev is renamed over the device node.
    const dev = guestkit(['convert', '-n', '-O', 'qcow2', src, '/dev/null']);
    expect(dev.status).toBe(1);
    expect(dev.stderr).toMatch(/is a character device, not a regular file or block device/);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });
});
