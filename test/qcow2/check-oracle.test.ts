/**
 * `check` against qemu-img check on damaged images: an injected leak, an injected double
 * reference, a wrong COPIED flag, a missing refcount, a refcount block pointing outside the file,
 * and the crafted 65,536-snapshot sample. Same counts, same message lines.
 */
import { beforeAll, expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { ourCheck, qemuCheck } from './helpers.js';

const CS = 65536;

/** Offsets of the metadata of a small default image made by qemu-img (64 KiB clusters, 16-bit refcounts). */
function layout(bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const l1 = Number(dv.getBigUint64(40));
  const reftable = Number(dv.getBigUint64(48));
  const refblock = Number(dv.getBigUint64(reftable) & 0x00fffffffffffe00n);
  const l2 = Number(dv.getBigUint64(l1) & 0x00fffffffffffe00n);
  return { dv, l1, reftable, refblock, l2 };
}

function agree(ours: Awaited<ReturnType<typeof ourCheck>>, q: ReturnType<typeof qemuCheck>) {
  expect(ours.messages).toEqual(q.lines);
  expect(ours.corruptions).toBe(q.json.corruptions ?? 0);
  expect(ours.leaks).toBe(q.json.leaks ?? 0);
  expect(ours.checkErrors).toBe(q.json['check-errors'] ?? 0);
  expect(ours.imageEndOffset).toBe(q.json['image-end-offset']);
}

describeOracle('qcow2 check against qemu-img check', () => {
  const dir = workDir('qcow2-check');
  let clean: string;
  beforeAll(() => {
    clean = join(dir, 'clean.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', clean, '8M');
    qemuIo('qcow2', clean, 'write -P 0xab 0 128k', 'write -P 0xcd 1M 64k', 'write -c -P 0x11 2M 64k');
  });

  function damaged(name: string, edit: (bytes: Uint8Array, l: ReturnType<typeof layout>) => Uint8Array | void): string {
    const path = join(dir, name);
    copyFileSync(clean, path);
    const bytes = new Uint8Array(readFileSync(path));
    const out = edit(bytes, layout(bytes)) ?? bytes;
    writeFileSync(path, out);
    return path;
  }

  it('a clean image: no errors, same statistics', async () => {
    const q = qemuCheck(clean);
    expect(q.status).toBe(0);
    const ours = await ourCheck(clean);
    agree(ours, q);
    expect(ours.allocatedClusters).toBe(q.json['allocated-clusters']);
    expect(ours.compressedClusters).toBe(q.json['compressed-clusters']);
  });

  it('finds an injected leak (a cluster with refcount 1 that nothing references)', async () => {
    const path = damaged('leak.qcow2', (bytes, l) => {
      // Append one cluster and count it as used.
      const grown = new Uint8Array(Math.ceil(bytes.length / CS) * CS + CS);
      grown.set(bytes);
      const cluster = grown.length / CS - 1;
      new DataView(grown.buffer).setUint16(l.refblock + 2 * cluster, 1);
      return grown;
    });
    const q = qemuCheck(path);
    expect(q.status).toBe(3); // leaks only
    expect(q.lines.some((x) => x.startsWith('Leaked cluster'))).toBe(true);
    const ours = await ourCheck(path);
    agree(ours, q);
    expect(ours.leaks).toBe(1);
    expect(ours.corruptions).toBe(0);
  });

  it('finds an injected double reference (two L2 entries naming one data cluster)', async () => {
    const path = damaged('double.qcow2', (bytes, l) => {
      l.dv.setBigUint64(l.l2 + 8, l.dv.getBigUint64(l.l2));
    });
    const q = qemuCheck(path);
    expect(q.status).toBe(2);
    expect(q.lines.some((x) => /^ERROR cluster \d+ refcount=1 reference=2$/.test(x))).toBe(true);
    const ours = await ourCheck(path);
    agree(ours, q);
    expect(ours.corruptions).toBeGreaterThan(0);
  });

  it('finds a missing COPIED flag on an L1 entry and on an L2 entry', async () => {
    const path = damaged('copied.qcow2', (bytes, l) => {
      l.dv.setBigUint64(l.l1, l.dv.getBigUint64(l.l1) & ~(1n << 63n));
      l.dv.setBigUint64(l.l2 + 16 * 8, l.dv.getBigUint64(l.l2 + 16 * 8) & ~(1n << 63n));
    });
    const q = qemuCheck(path);
    expect(q.lines.some((x) => x.startsWith('ERROR OFLAG_COPIED L2 cluster'))).toBe(true);
    expect(q.lines.some((x) => x.startsWith('ERROR OFLAG_COPIED data cluster'))).toBe(true);
    agree(await ourCheck(path), q);
  });

  it('finds a used cluster whose refcount is 0, and reserved bits in an L2 entry', async () => {
    const path = damaged('zero-ref.qcow2', (bytes, l) => {
      const dataCluster = Number(l.dv.getBigUint64(l.l2) & 0x00fffffffffffe00n) / CS;
      l.dv.setUint16(l.refblock + 2 * dataCluster, 0);
      l.dv.setBigUint64(l.l2 + 8, l.dv.getBigUint64(l.l2 + 8) | 0x100n);
    });
    const q = qemuCheck(path);
    expect(q.lines.some((x) => /refcount=0 reference=1/.test(x))).toBe(true);
    agree(await ourCheck(path), q);
  });

  it('finds a refcount block outside the image and a reference past the end of the file', async () => {
    const path = damaged('outside.qcow2', (bytes, l) => {
      l.dv.setBigUint64(l.reftable + 8, 0x40000000n);
      l.dv.setBigUint64(l.l2 + 32 * 8, 0x8000000080000000n);
    });
    const q = qemuCheck(path);
    expect(q.lines.some((x) => /is outside image/.test(x))).toBe(true);
    expect(q.lines.some((x) => /exceeding the end of the file/.test(x))).toBe(true);
    agree(await ourCheck(path), q);
  });

  it('a refcount table entry with bit 63 set, in a 512-byte-cluster image (fuzzing regression: once looped forever)', async () => {
    const path = join(dir, 'reft-bit63.qcow2');
    const bytes = new Uint8Array(readFileSync(realWorld('qemu-compressed-512b-clusters.qcow2')));
    const reftable = Number(new DataView(bytes.buffer).getBigUint64(48));
    bytes[reftable + 17 * 8] = 0xc8;
    writeFileSync(path, bytes);
    const q = qemuCheck(path);
    expect(q.lines).toEqual(['ERROR refcount block 17 is outside image']);
    agree(await ourCheck(path), q);
  });

  it('an image with persistent bitmaps and internal snapshots has no false leaks', async () => {
    const path = join(dir, 'bitmaps.qcow2');
    copyFileSync(clean, path);
    qemuImg('bitmap', '--add', path, 'b0');
    qemuImg('snapshot', '-c', 's1', path);
    qemuIo('qcow2', path, 'write -P 0x77 0 64k');
    qemuImg('bitmap', '--add', '-g', '4k', path, 'b1');
    const q = qemuCheck(path);
    expect(q.status).toBe(0);
    agree(await ourCheck(path), q);
  });

  it('the 65,536-snapshot sample: the same 65,543 corruptions, in bounded time', async () => {
    const path = realWorld('malicious-65536-snapshots.qcow2');
    const t0 = performance.now();
    const ours = await ourCheck(path);
    expect(performance.now() - t0).toBeLessThan(15_000);
    const q = qemuCheck(path);
    expect(ours.corruptions).toBe(q.json.corruptions);
    expect(ours.corruptions).toBe(65543);
    expect(ours.messages).toEqual(q.lines);
  });
});
