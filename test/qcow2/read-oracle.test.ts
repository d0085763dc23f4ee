/**
 * The reader against qemu-img on every variant of the matrix (matrix.ts): bytes (qemu-img convert -O
 * raw), allocation (qemu-img map), info (qemu-img info) and check (qemu-img check) must agree.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { describeOracle } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { openImage } from '../../src/formats/open.js';
import { toQemuInfo } from '../../src/api/info.js';
import { checkHostOffsets, makeSourceRaw, mergeRuns, ourCheck, ourExtents, qemuCheck, qemuInfo, qemuRaw, qemuRuns, readAll } from './helpers.js';
import { VARIANTS } from './matrix.js';

describeOracle('qcow2 reader against qemu-img on the issue matrix', () => {
  const dir = workDir('qcow2-read');
  const images = new Map<string, string>();
  beforeAll(() => {
    const source = makeSourceRaw(dir);
    for (const v of VARIANTS) images.set(v.name, v.make(dir, source));
  });

  for (const v of VARIANTS) {
    describe(v.name, () => {
      it('reads byte for byte what qemu-img convert -O raw reads', async () => {
        const path = images.get(v.name)!;
        const ours = await readAll(path);
        const ref = qemuRaw(dir, path);
        expect(ours.length).toBe(ref.length);
        expect(Buffer.compare(ours, ref)).toBe(0);
        // Reads that start and end inside clusters and subclusters go through the same mapping.
        const r = await openImage(path);
        try {
          for (const [off, len] of [
            [511, 3000],
            [65535, 70000],
            [r.virtualSize - 777, 777],
            [Math.floor(r.virtualSize / 3), 123457],
          ]) {
            const n = Math.min(len, r.virtualSize - off);
            expect(Buffer.compare(Buffer.from(await r.read(off, n)), ref.subarray(off, off + n))).toBe(0);
          }
        } finally {
          await r.close();
        }
      });

      it('extents agree with qemu-img map (kind, depth and host offsets)', async () => {
        const path = images.get(v.name)!;
        const ours = await ourExtents(path);
        expect(mergeRuns(ours)).toEqual(qemuRuns(path));
        expect(checkHostOffsets(path, ours)).toEqual([]);
      });

      it('info agrees with qemu-img info', async () => {
        const path = images.get(v.name)!;
        const r = await openImage(path);
        const ours = toQemuInfo(path, r.info());
        await r.close();
        const q = qemuInfo(path);
        for (const key of ['format', 'virtual-size', 'cluster-size', 'backing-filename', 'full-backing-filename', 'backing-filename-format', 'dirty-flag']) {
          expect([key, (ours as unknown as Record<string, unknown>)[key]]).toEqual([key, q[key]]);
        }
        expect(ours['format-specific']).toEqual(q['format-specific']);
        const strip = (s: Array<Record<string, unknown>> | undefined) => s?.map(({ 'date-sec': _a, 'date-nsec': _b, ...rest }) => rest);
        expect(strip(ours.snapshots)).toEqual(strip(q.snapshots));
      });

      it('check agrees with qemu-img check', async () => {
        const path = images.get(v.name)!;
        const ours = await ourCheck(path);
        const q = qemuCheck(path);
        expect(ours.messages).toEqual(q.lines);
        expect(ours.corruptions).toBe(q.json.corruptions ?? 0);
        expect(ours.leaks).toBe(q.json.leaks ?? 0);
        expect(ours.checkErrors).toBe(q.json['check-errors'] ?? 0);
        expect(ours.imageEndOffset).toBe(q.json['image-end-offset']);
        expect(ours.totalClusters).toBe(q.json['total-clusters']);
        expect(ours.allocatedClusters).toBe(q.json['allocated-clusters'] ?? 0);
        expect(ours.fragmentedClusters).toBe(q.json['fragmented-clusters'] ?? 0);
        expect(ours.compressedClusters).toBe(q.json['compressed-clusters'] ?? 0);
      });
    });
  }
});
