/**
 * The qcow2 samples of fixtures/real-world made by other tools: each reads exactly as qemu-img reads
 * it, its info agrees with qemu-img's, and the crafted ones stay cheap.
 */
import { expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { join } from 'node:path';
import { describeOracle } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { openImage } from '../../src/formats/open.js';
import { toQemuInfo } from '../../src/api/info.js';
import { UnsupportedFeatureError } from '../../src/errors.js';
import { mergeRuns, ourExtents, qemuInfo, qemuRaw, qemuRuns, readAll } from './helpers.js';

const SAMPLES = ['qemu-compressed-512b-clusters.qcow2', 'qcow2-v2-compressed.qcow2', 'ext2-fs.qcow2', 'malicious-65536-snapshots.qcow2'];

describeOracle('qcow2 samples from other tools', () => {
  const dir = workDir('qcow2-samples');
  for (const name of SAMPLES) {
    it(`${name}: bytes, map and info as qemu-img sees them`, async () => {
      const path = realWorld(name);
      if (!name.startsWith('malicious')) {
        expect(Buffer.compare(await readAll(path), qemuRaw(dir, path))).toBe(0);
        expect(mergeRuns(await ourExtents(path))).toEqual(qemuRuns(path));
      } else {
        // qemu-img needs seconds to open the crafted sample (65,536 snapshots), so only its info
        // is asked for; its one L1 entry is empty, so its 512 bytes are unallocated zeros.
        expect((await readAll(path)).equals(Buffer.alloc(512))).toBe(true);
        expect(await ourExtents(path)).toEqual([{ offset: 0, length: 512, kind: 'zero', present: false, depth: 0 }]);
      }
      const r = await openImage(path);
      const ours = toQemuInfo(path, r.info());
      await r.close();
      const q = qemuInfo(path);
      expect(ours['virtual-size']).toBe(q['virtual-size']);
      expect(ours['cluster-size']).toBe(q['cluster-size']);
      expect(ours['format-specific']).toEqual(q['format-specific']);
      expect(ours.snapshots?.length ?? 0).toBe(q.snapshots?.length ?? 0);
      expect(ours.snapshots).toEqual(q.snapshots);
    });
  }

  it('the 65,536-snapshot sample opens in well under a second and reports its table past EOF', async () => {
    const t0 = performance.now();
    const r = await openImage(realWorld('malicious-65536-snapshots.qcow2'));
    const ms = performance.now() - t0;
    const info = r.info();
    await r.close();
    expect(ms).toBeLessThan(3000);
    expect(info.snapshots).toHaveLength(65536);
    expect(info.warnings?.some((w) => /past the end of the file/.test(w))).toBe(true);
  });

  it('legacy qcow version 1 is refused as unsupported, naming the version field', async () => {
    const err = await openImage(realWorld('malicious-qcow1-152tib.img')).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.field).toBe('version');
  });
});
