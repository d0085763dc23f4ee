/**
 * zstd compressed clusters: QEMU decodes frames until the cluster is full and ignores what
 * follows in the sector range (block/qcow2-threads.c). fzstd's one-shot decompress() cannot (it
 * restarts every frame at the start of its output buffer and parses trailing bytes as a frame),
 * which is why qcow2 drives its streaming decoder; the behaviour is pinned here.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptImageError } from '../../src/errors.js';
import { zstdDecodeCluster } from '../../src/formats/qcow2/zstd.js';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { qemuRaw, readAll } from './helpers.js';

const FIX = new URL('../../fixtures/qcow2/', import.meta.url).pathname;
const load = (f: string) => new Uint8Array(readFileSync(join(FIX, f)));
const A = load('half-a.bin');
const B = load('half-b.bin');
const ZA = load('half-a.zst');
const ZB = load('half-b.zst');
const ZBN = load('half-b-nosize.zst');
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const skippable = (n: number) => {
  const s = new Uint8Array(8 + n);
  new DataView(s.buffer).setUint32(0, 0x184d2a53, true);
  new DataView(s.buffer).setUint32(4, n, true);
  return s;
};

describe('zstd cluster decoding', () => {
  it('one frame, two frames, frames with and without a content size', () => {
    expect(same(zstdDecodeCluster(ZA, 32768), A)).toBe(true);
    expect(same(zstdDecodeCluster(cat(ZA, ZB), 65536), cat(A, B))).toBe(true);
    expect(same(zstdDecodeCluster(cat(ZBN, ZA), 65536), cat(B, A))).toBe(true);
  });

  it('ignores whatever follows the frame that fills the cluster (sector padding, the next payload)', () => {
    expect(same(zstdDecodeCluster(cat(ZA, ZB, pseudoRandom(300, 3)), 65536), cat(A, B))).toBe(true);
    expect(same(zstdDecodeCluster(cat(ZA, ZB), 32768), A)).toBe(true);
  });

  it('skips skippable frames', () => {
    expect(same(zstdDecodeCluster(cat(skippable(5), ZA, skippable(0), ZB), 65536), cat(A, B))).toBe(true);
  });

  it('refuses payloads that end early, overflow the cluster, or ask for a huge window', () => {
    const bad: Array<[string, Uint8Array, number]> = [
      ['truncated second frame', cat(ZA, ZB.subarray(0, ZB.length - 10)), 65536],
      ['too little data', ZA, 65536],
      ['declared size larger than the cluster', ZA, 16384],
      ['undeclared size larger than the cluster', ZBN, 16384],
      ['garbage instead of a frame', cat(ZA, pseudoRandom(64, 5)), 65536],
      ['empty', new Uint8Array(0), 512],
    ];
    const hugeWindow = ZBN.slice();
    hugeWindow[5] = 0xf8; // window descriptor: 2^41
    bad.push(['huge window', hugeWindow, 32768]);
    for (const [what, data, size] of bad) {
      let err: unknown;
      try {
        zstdDecodeCluster(data, size, { file: 'z.qcow2', offset: 1234 });
      } catch (e) {
        err = e;
      }
      expect([what, err]).toEqual([what, expect.any(CorruptImageError)]);
      expect((err as CorruptImageError).offset).toBe(1234);
    }
  });
});

describeOracle('zstd clusters as QEMU reads them', () => {
  const dir = workDir('qcow2-zstd');
  it('a cluster stored as two frames followed by garbage reads as QEMU reads it', async () => {
    const path = join(dir, 'frames.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', path, '1M');
    qemuIo('qcow2', path, 'write -c -P 0x11 0 64k', 'write -c -P 0x22 64k 64k');
    const bytes = new Uint8Array(readFileSync(path));
    const dv = new DataView(bytes.buffer);
    const l1 = Number(dv.getBigUint64(40));
    const l2 = Number(dv.getBigUint64(l1) & 0x00fffffffffffe00n);
    // Put the new payload in a fresh cluster at the end and point entry 0 at it.
    const at = Math.ceil(bytes.length / 65536) * 65536;
    const payload = cat(ZA, ZB, pseudoRandom(700, 11));
    const sectors = Math.ceil(payload.length / 512);
    const grown = new Uint8Array(at + sectors * 512);
    grown.set(bytes);
    grown.set(payload, at);
    new DataView(grown.buffer).setBigUint64(l2, (1n << 62n) | (BigInt(sectors - 1) << 54n) | BigInt(at));
    writeFileSync(path, grown);
    const ref = qemuRaw(dir, path);
    expect(Buffer.compare(ref.subarray(0, 65536), Buffer.from(cat(A, B)))).toBe(0);
    expect(Buffer.compare(await readAll(path), ref)).toBe(0);
  });
});
