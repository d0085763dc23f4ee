/**
 * resize against qemu-img resize, for the formats qemu-img resizes (raw and qcow2): copies of one
 * image are resized by guestkit and by qemu-img; the two must have the same virtual size and the
 * same content (qemu-img compare, and byte for byte through qemu-img convert -O raw: the old content
 * followed by zeros), and ours must pass qemu-img check with no errors and no leaks.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { resize } from '../../src/api/resize.js';
import { describeOracle, qemuImg, qemuImgStatus, qemuIo } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { KiB, MiB, contentFor, copyOf, expectQemuCheckClean, grownContent, makeImage, qemuContent, qemuVirtualSize } from './helpers.js';

/** Header fields read straight from the file, to see which path a resize took. */
function qcow2Fields(path: string): { l1Offset: bigint; l1Size: number; refcountTable: bigint; refcountClusters: number } {
  const dv = new DataView(readFileSync(path).buffer);
  return { l1Size: dv.getUint32(36), l1Offset: dv.getBigUint64(40), refcountTable: dv.getBigUint64(48), refcountClusters: dv.getUint32(56) };
}

interface Qcow2Case {
  name: string;
  by: 'qemu' | 'ours';
  options: string;
  size: number;
  to: string;
  /** Which way the active L1 table must go. */
  l1: 'same' | 'in place' | 'moved';
  refcountTableMoves?: boolean;
  snapshot?: boolean;
  content?: Uint8Array;
}

/**
 * 512-byte clusters with 64-bit refcounts: a refcount block counts 64 clusters and our writer sizes
 * the table exactly (one cluster: 64 blocks, 4096 clusters). ~3900 data clusters bring the file
 * close to that, so the new L1 table (5120 entries = 80 clusters) must go past what the table
 * covers: the refcount table itself has to move.
 */
const nearlyFullTable = (() => {
  const d = new Uint8Array(2 * MiB);
  d.set(pseudoRandom(3900 * 512, 77), 0);
  return d;
})();

const CASES: Qcow2Case[] = [
  { name: 'qemu-img v3, 64 KiB clusters: only the size changes', by: 'qemu', options: '', size: 4 * MiB, to: '+4M', l1: 'same' },
  { name: 'qemu-img v2, 512-byte clusters: L1 moves, new refcount blocks', by: 'qemu', options: 'compat=0.10,cluster_size=512', size: MiB, to: '48M', l1: 'moved' },
  { name: 'qemu-img v3, 1 KiB clusters, with a snapshot: L1 moves', by: 'qemu', options: 'cluster_size=1k', size: 2 * MiB, to: '+62M', l1: 'moved', snapshot: true },
  { name: 'qemu-img v3, 4 KiB clusters: L1 grows in its cluster', by: 'qemu', options: 'cluster_size=4k', size: 4 * MiB, to: '64M', l1: 'in place' },
  { name: 'qemu-img v3, 1-bit refcounts, 512-byte clusters', by: 'qemu', options: 'cluster_size=512,refcount_bits=1', size: MiB, to: '24M', l1: 'moved' },
  { name: 'guestkit v3, 512-byte clusters', by: 'ours', options: 'cluster_size=512', size: MiB + 3 * KiB, to: '40M', l1: 'moved' },
  { name: 'guestkit v2, 2 KiB clusters', by: 'ours', options: 'compat=0.10,cluster_size=2k', size: 3 * MiB, to: '+150M', l1: 'moved' },
  { name: 'guestkit v3, 16 KiB clusters, extended L2', by: 'ours', options: 'cluster_size=16k,extended_l2=on', size: 5 * MiB, to: '+30M', l1: 'in place' },
  {
    name: 'guestkit v3, 64-bit refcounts: the refcount table moves',
    by: 'ours',
    options: 'cluster_size=512,refcount_bits=64',
    size: 2 * MiB,
    to: '160M',
    l1: 'moved',
    refcountTableMoves: true,
    content: nearlyFullTable,
  },
];

describeOracle('resize qcow2 against qemu-img resize', () => {
  const dir = workDir('resize-qcow2');

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const content = c.content ?? contentFor(c.size, 10 * i + 1);
      const image = await makeImage(dir, `q${i}.qcow2`, 'qcow2', content, c.options, c.by);
      let snapshotContent: Buffer | undefined;
      if (c.snapshot) {
        qemuImg('snapshot', '-c', 's1', image);
        // Clusters written after the snapshot are copies: the snapshot keeps the old ones.
        qemuIo('qcow2', image, `write -P 0x5a 0 ${64 * KiB}`);
        content.fill(0x5a, 0, 64 * KiB);
        snapshotContent = Buffer.from(contentFor(c.size, 10 * i + 1));
      }
      const ours = copyOf(image, 'ours');
      const theirs = copyOf(image, 'qemu');
      const before = qcow2Fields(ours);

      const r = await resize({ image: ours, size: c.to });
      qemuImg('resize', '-f', 'qcow2', theirs, c.to);

      const size = qemuVirtualSize(theirs, 'qcow2');
      expect(r.newSize).toBe(size);
      expect(qemuVirtualSize(ours, 'qcow2')).toBe(size);
      expectQemuCheckClean(ours, 'qcow2');
      const cmp = qemuImgStatus('compare', '-f', 'qcow2', '-F', 'qcow2', ours, theirs);
      expect(cmp.status, cmp.stdout + cmp.stderr).toBe(0);
      const got = qemuContent(ours, 'qcow2', dir);
      expect(got.equals(qemuContent(theirs, 'qcow2', dir))).toBe(true);
      expect(got.equals(grownContent(content, size))).toBe(true);

      const after = qcow2Fields(ours);
      expect(after.l1Offset === before.l1Offset, 'L1 offset').toBe(c.l1 !== 'moved');
      expect(after.l1Size > before.l1Size, 'L1 size').toBe(c.l1 !== 'same');
      expect(after.refcountTable !== before.refcountTable, 'refcount table offset').toBe(c.refcountTableMoves === true);
      if (snapshotContent) {
        // The snapshot still reads as it was taken (qemu-img shows it at the image's current size).
        const snap = join(dir, `snap${i}.raw`);
        qemuImg('convert', '-f', 'qcow2', '-l', 'snapshot.name=s1', '-O', 'raw', ours, snap);
        expect(readFileSync(snap).equals(grownContent(snapshotContent, size))).toBe(true);
      }
    });
  });

  it('a qcow2 image over a backing file no larger than it grows; only the top changes', async () => {
    const base = await makeImage(dir, 'base.qcow2', 'qcow2', contentFor(2 * MiB, 90), '', 'qemu');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top, String(2 * MiB));
    const baseBytes = readFileSync(base);
    const theirs = copyOf(top, 'qemu');
    await resize({ image: top, size: '+3M' });
    qemuImg('resize', theirs, '+3M');
    expect(readFileSync(base).equals(baseBytes)).toBe(true);
    expect(qemuVirtualSize(top, 'qcow2')).toBe(5 * MiB);
    expectQemuCheckClean(top, 'qcow2');
    expect(qemuImgStatus('compare', top, theirs).status).toBe(0);
  });
});

describeOracle('resize raw against qemu-img resize', () => {
  const dir = workDir('resize-raw');
  const cases: Array<{ name: string; size: number; to: string; shrink?: boolean }> = [
    { name: 'grows to an absolute size', size: 3 * MiB, to: '7M' },
    { name: 'grows by a relative size', size: 3 * MiB, to: '+1536K' },
    { name: 'a file of an odd length: +1 counts from the length rounded up to a sector, as qemu-img', size: MiB + 1, to: '+1' },
    { name: 'shrinks by a relative size with --shrink', size: 3 * MiB, to: '-1M', shrink: true },
    { name: 'shrinks to an odd size with --shrink', size: 3 * MiB, to: '1000001', shrink: true },
  ];
  cases.forEach((c, i) => {
    it(c.name, async () => {
      const content = contentFor(c.size, 200 + i);
      const image = join(dir, `r${i}.raw`);
      writeFileSync(image, content);
      const ours = copyOf(image, 'ours');
      const theirs = copyOf(image, 'qemu');
      const r = await resize({ image: ours, size: c.to, shrink: c.shrink });
      qemuImg('resize', '-f', 'raw', ...(c.shrink ? ['--shrink'] : []), theirs, c.to);
      expect(statSync(ours).size).toBe(statSync(theirs).size);
      expect(r.newSize).toBe(statSync(theirs).size);
      const got = readFileSync(ours);
      expect(got.equals(readFileSync(theirs))).toBe(true);
      expect(got.equals(grownContent(content, got.length))).toBe(true);
    });
  });
});
