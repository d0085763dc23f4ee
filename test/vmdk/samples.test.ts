/**
 * The VMDK samples in fixtures/real-world (VMware Workstation, ESXi/ovftool exports, qemu-img, and
 * two hostile files) read exactly as qemu-img reads them, or fail with the same class of error.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { convert } from '../../src/api/convert.js';
import { checkImage } from '../../src/api/check.js';
import { detectFormat } from '../../src/api/info.js';
import { LimitExceededError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { RawWriter } from '../../src/formats/raw/writer.js';
import { copyImage } from '../../src/stream/copy.js';
import { FileSink } from '../../src/stream/sink.js';
import { describeOracle, qemuImg, qemuImgStatus } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { openAsPipe, ourMap, qemuMap } from './helpers.js';

interface Sample {
  name: string;
  createType: string;
  adapter?: string;
  hw?: string;
  stream: boolean;
}

const READABLE: Sample[] = [
  { name: 'esxi-ovftool-streamoptimized.vmdk', createType: 'streamOptimized', adapter: 'lsilogic', hw: '8', stream: true },
  { name: 'ovftool-streamoptimized-10g.vmdk', createType: 'streamOptimized', adapter: 'lsilogic', hw: '10', stream: true },
  { name: 'workstation-monolithicsparse-10g.vmdk', createType: 'monolithicSparse', adapter: 'lsilogic', hw: '10', stream: false },
  { name: 'ext2-fs.vmdk', createType: 'monolithicSparse', stream: false },
];

function identical(a: string, fa: string, b: string, fb: string): void {
  const r = qemuImgStatus('compare', '-f', fa, '-F', fb, a, b);
  expect(r.stdout + r.stderr).toMatch(/Images are identical/);
  expect(r.status).toBe(0);
}

describeOracle('shared VMDK samples', () => {
  const dir = workDir('vmdk-samples');

  for (const s of READABLE) {
    const path = realWorld(s.name);
    it(`${s.name} reads as qemu-img reads it (content, map, info)`, async () => {
      expect(existsSync(path)).toBe(true);
      const out = join(dir, `${s.name}.raw`);
      await convert({ source: path, output: out, format: 'raw', durable: false });
      identical(path, 'vmdk', out, 'raw');
      const r = await openImage(path);
      try {
        expect(r.format).toBe('vmdk');
        expect(await ourMap(r)).toEqual(qemuMap(path));
        const q = JSON.parse(qemuImg('info', '--output=json', path));
        const info = r.info();
        expect(info.virtualSize).toBe(q['virtual-size']);
        expect(info.clusterSize).toBe(q['cluster-size']);
        const spec = info.formatSpecific!;
        expect(spec['create-type']).toBe(q['format-specific'].data['create-type']);
        expect(spec['create-type']).toBe(s.createType);
        expect(spec.cid).toBe(q['format-specific'].data.cid);
        expect(spec['parent-cid']).toBe(q['format-specific'].data['parent-cid']);
        if (s.adapter) expect(spec['adapter-type']).toBe(s.adapter);
        if (s.hw) expect(spec['hw-version']).toBe(s.hw);
        expect(info.warnings).toBeUndefined();
      } finally {
        await r.close();
      }
      const check = await checkImage(path);
      expect(check).toMatchObject({ corruptions: 0, checkErrors: 0, messages: [] });
    });

    if (s.stream) {
      it(`${s.name} reads forward-only from a pipe`, async () => {
        const out = join(dir, `${s.name}.pipe.raw`);
        const r = await openAsPipe(path, 3 * 512 + 7);
        try {
          const sink = await FileSink.open(out, 'w');
          const w = new RawWriter(sink, r.virtualSize);
          await copyImage(r, w);
          await w.finish();
          await sink.close();
        } finally {
          await r.close();
        }
        identical(path, 'vmdk', out, 'raw');
      });
    }
  }

  for (const name of ['qemu-afl9-fuzzed.vmdk', 'malicious-huge-l1.vmdk.img']) {
    it(`${name} is refused as qemu-img refuses it ("L1 size too big"): a limit, not a crash`, async () => {
      const path = realWorld(name);
      expect(qemuImgStatus('info', path).stderr).toMatch(/L1 size too big/);
      expect((await detectFormat(path)).format).toBe('vmdk');
      const err = await openImage(path).then(
        (r) => r.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LimitExceededError);
      expect(err).toMatchObject({ file: path, field: 'capacity', offset: 12 });
      expect(String((err as Error).message)).toMatch(/grain directory of \d+ entries is too big/);
    });
  }
});
