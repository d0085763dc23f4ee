/**
 * Our writers lay files out as qemu-img does (docs/FORMATS.md §3.7): the sparse plan as a pure
 * function against the verified numbers, and whole empty images byte for byte against
 * `qemu-img create` (the CID, random in both, masked).
 */
import { copyFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVmdk } from '../../src/formats/vmdk/create.js';
import { planSparseExtent } from '../../src/formats/vmdk/writer-sparse.js';
import { FileSink } from '../../src/stream/sink.js';
import { describeOracle, qemuImg } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';

const GiB = 1024 ** 3;

describe('sparse extent plan', () => {
  it('1 GiB: redundant GD at 21, GD at 150, grains from 384 (qemu-img create)', () => {
    expect(planSparseExtent(GiB / 512, 20)).toMatchObject({ descriptorOffset: 1, descriptorSectors: 20, rgdOffset: 21, gdOffset: 150, overHead: 384, gtCount: 32, gdSectors: 1 });
  });
  it('a 2 GiB split extent: GD at 278, grains from 640', () => {
    expect(planSparseExtent((2 * GiB) / 512, 20)).toMatchObject({ gdOffset: 278, overHead: 640 });
  });
  it('refuses a monolithic sparse extent past 2 TiB', () => {
    expect(() => planSparseExtent(2 ** 32, 20)).toThrow(/twoGbMaxExtentSparse/);
  });
});

/** Creates an empty image with our writer (no data: only what create and finish write). */
async function ourCreate(path: string, size: number, options: Record<string, unknown>): Promise<void> {
  const sink = await FileSink.open(path, 'wx');
  const sides: FileSink[] = [];
  const w = await createVmdk(sink, {
    virtualSize: size,
    options,
    path,
    file: path,
    openSideFile: async (p) => {
      const s = await FileSink.open(p, 'wx');
      sides.push(s);
      return s;
    },
  });
  await w.finish();
  await Promise.all([sink, ...sides].map((s) => s.close()));
}

/**
 * Descriptor text with CID and parentCID masked (QEMU prints them without zero padding, we with),
 * the parentCID compared as a number.
 */
function maskedText(b: Buffer): string {
  const text = b.toString('latin1').split('\0')[0];
  const parent = /^parentCID=([0-9a-f]+)$/m.exec(text);
  return text.replace(/^(parent)?CID=[0-9a-f]+$/gm, '$1CID=x') + (parent ? `parent ${parseInt(parent[1], 16)}` : '');
}

/** Equal except the CID: a sparse extent's header and tables exactly, descriptors as masked text. */
function expectSameButCid(ours: Buffer, theirs: Buffer, name: string): void {
  if (theirs.subarray(0, 4).toString() !== 'KDMV') {
    // A descriptor file is its text (its length varies with the CID's digits).
    expect(maskedText(ours), name).toBe(maskedText(theirs));
    return;
  }
  expect(ours.length, name).toBe(theirs.length);
  const descStart = Number(theirs.readBigUInt64LE(28)) * 512;
  const descEnd = descStart + Number(theirs.readBigUInt64LE(36)) * 512;
  expect(ours.subarray(0, descStart).equals(theirs.subarray(0, descStart)), `${name} header`).toBe(true);
  expect(maskedText(ours.subarray(descStart, descEnd)), `${name} descriptor`).toBe(maskedText(theirs.subarray(descStart, descEnd)));
  expect(ours.subarray(descEnd).equals(theirs.subarray(descEnd)), `${name} tables`).toBe(true);
}

describeOracle('empty images equal qemu-img create byte for byte (CID masked)', () => {
  const root = workDir('vmdk-golden');
  const cases: Array<[string, number, Record<string, string>]> = [
    ['monolithicSparse', GiB, {}],
    ['monolithicSparse', 64 * 1024 ** 2 + 512, { adapter_type: 'lsilogic', hwversion: '11' }],
    ['monolithicSparse', 64 * 1024 ** 2, { zeroed_grain: 'on', compat6: 'on' }],
    ['twoGbMaxExtentSparse', 2.5 * GiB, { adapter_type: 'buslogic' }],
    ['monolithicFlat', 100 * 1024 ** 2, { adapter_type: 'lsilogic' }],
    ['twoGbMaxExtentFlat', 2 * GiB + 1024 ** 2, { adapter_type: 'legacyESX', toolsversion: '12345' }],
    ['monolithicSparse', 8 * 1024 ** 2, { backing_file: 'base.vmdk', backing_fmt: 'vmdk' }],
  ];
  for (const [sub, size, extra] of cases) {
    it(`${sub} ${size} ${JSON.stringify(extra)}`, async () => {
      const opts = { subformat: sub, ...extra };
      const qdir = join(root, `q-${sub}-${size}-${Object.keys(extra).join('')}`);
      const odir = `${qdir.replace('/q-', '/o-')}`;
      const { mkdirSync } = await import('node:fs');
      mkdirSync(qdir);
      mkdirSync(odir);
      if (extra.backing_file) {
        qemuImg('create', '-q', '-f', 'vmdk', join(qdir, 'base.vmdk'), '8M');
        copyFileSync(join(qdir, 'base.vmdk'), join(odir, 'base.vmdk'));
      }
      qemuImg('create', '-q', '-f', 'vmdk', '-o', Object.entries(opts).map(([k, v]) => `${k}=${v}`).join(','), join(qdir, 'd.vmdk'), String(size));
      await ourCreate(join(odir, 'd.vmdk'), size, opts);
      const names = readdirSync(qdir).sort();
      expect(readdirSync(odir).sort()).toEqual(names);
      for (const n of names) {
        const qs = statSync(join(qdir, n));
        const os = statSync(join(odir, n));
        if (qs.size > 16 * 1024 ** 2) {
          // Flat extents: the same length, and holes in both (nothing written).
          expect(os.size, n).toBe(qs.size);
          expect(os.blocks * 512, n).toBeLessThan(1024 ** 2);
          continue;
        }
        expectSameButCid(readFileSync(join(odir, n)), readFileSync(join(qdir, n)), n);
      }
    });
  }
});
