/**
 * The real-world VDIs in fixtures/real-world (VirtualBox 3 and 4.0.8), read as qemu-img reads them:
 * same size and map, same bytes, and a clean check. The 8 GiB one has no allocated block, so it is
 * compared through the map and reads at both ends.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { checkImage, checkJson } from '../../src/api/check.js';
import { imageInfo } from '../../src/api/info.js';
import { toMapEntry } from '../../src/api/map.js';
import { openImage } from '../../src/formats/open.js';
import { describeOracle, qemuImg, qemuToRaw } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';

describeOracle('shared VDI samples', () => {
  const dir = workDir('vdi-samples');

  for (const [name, text] of [
    ['sun-virtualbox-3-dynamic.vdi', '<<< Sun VirtualBox Disk Image >>>'],
    ['virtualbox-4.0.8-dynamic.vdi', '<<< Oracle VM VirtualBox Disk Image >>>'],
  ] as const) {
    it(`${name} reads as qemu-img reads it`, async () => {
      const path = realWorld(name);
      const q = JSON.parse(qemuImg('info', '--output=json', path));
      const info = await imageInfo(path);
      expect(info['virtual-size']).toBe(q['virtual-size']);
      expect(info['cluster-size']).toBe(q['cluster-size']);
      expect(info.warnings).toBeUndefined();
      const fs = info['format-specific']!.data;
      expect(fs['file-info']).toBe(text);
      expect(fs['header-size']).toBe(0x190);
      expect(fs['lchs-geometry']).toBeDefined();

      const r = await openImage(path);
      const map = [];
      for await (const e of r.extents()) map.push({ ...toMapEntry(e) });
      expect(map).toEqual(JSON.parse(qemuImg('map', '--output=json', path)));
      if (r.virtualSize <= 64 * 1024 * 1024) {
        const raw = join(dir, `${name}.raw`);
        qemuToRaw(path, raw);
        expect(Buffer.from(await r.read(0, r.virtualSize)).equals(readFileSync(raw))).toBe(true);
      } else {
        for (const at of [0, r.virtualSize - 1024 * 1024]) expect((await r.read(at, 1024 * 1024)).every((b) => b === 0)).toBe(true);
      }
      await r.close();
      expect(checkJson((await checkImage(path))!)).toEqual(JSON.parse(qemuImg('check', '--output=json', path)));
    });
  }
});
