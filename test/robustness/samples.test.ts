/**
 * Every real-world sample in fixtures/real-world has a pinned outcome: either it reads exactly as
 * qemu-img reads it (our raw conversion compares identical under `qemu-img compare`), or it fails
 * with the typed error class that matches qemu-img's refusal. None may crash.
 */
import { expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImgStatus } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { convert } from '../../src/api/convert.js';
import { openImage } from '../../src/formats/open.js';
import {
  CorruptImageError,
  GuestkitError,
  LimitExceededError,
  UnsupportedFeatureError,
} from '../../src/errors.js';

type Outcome = { reads: string } | { refuses: Array<new (...a: never[]) => GuestkitError> };

/** qemu format name for each readable sample. */
const SAMPLES: Record<string, Outcome> = {
  'esxi-ovftool-streamoptimized.vmdk': { reads: 'vmdk' },
  'ovftool-streamoptimized-10g.vmdk': { reads: 'vmdk' },
  'workstation-monolithicsparse-10g.vmdk': { reads: 'vmdk' },
  'ext2-fs.vmdk': { reads: 'vmdk' },
  'hyperv2012r2-dynamic.vhd': { reads: 'vpc' },
  'virtualpc-dynamic.vhd': { reads: 'vpc' },
  'virtualbox-4.0.8-dynamic.vdi': { reads: 'vdi' },
  'sun-virtualbox-3-dynamic.vdi': { reads: 'vdi' },
  'qemu-compressed-512b-clusters.qcow2': { reads: 'qcow2' },
  'qcow2-v2-compressed.qcow2': { reads: 'qcow2' },
  'ext2-fs.qcow2': { reads: 'qcow2' },
  'grub-mbr.raw': { reads: 'raw' },
  // Opens in qemu-img too (its 65,536 snapshot entries are what `check` complains about).
  'malicious-65536-snapshots.qcow2': { reads: 'qcow2' },
  // qemu-img: "Could not open: ... table too large" / "L1 size too big".
  'qemu-afl5-fuzzed.vhd': { refuses: [LimitExceededError, CorruptImageError] },
  'qemu-afl9-fuzzed.vmdk': { refuses: [LimitExceededError, CorruptImageError] },
  'malicious-huge-l1.vmdk.img': { refuses: [LimitExceededError, CorruptImageError] },
  // Legacy qcow v1: out of scope, refused as unsupported (qemu-img opens it with its qcow driver).
  'malicious-qcow1-152tib.img': { refuses: [UnsupportedFeatureError] },
  'hyperv-win10-fixed.vhdx': { reads: 'vhdx' },
  'hyperv-ws2016-dynamic-swap.vhdx': { reads: 'vhdx' },
};

describeOracle('real-world samples in fixtures/real-world', () => {
  const dir = workDir('samples');
  for (const [name, outcome] of Object.entries(SAMPLES)) {
    const path = realWorld(name);
    if ('reads' in outcome) {
      it(`${name} reads exactly as qemu-img reads it`, async () => {
        expect(existsSync(path)).toBe(true);
        const out = join(dir, `${name}.raw`);
        const r = await convert({ source: path, output: out, format: 'raw', durable: false });
        const q = qemuImgStatus('compare', '-f', outcome.reads, '-F', 'raw', path, out);
        expect(q.stdout + q.stderr).toMatch(/Images are identical/);
        expect(q.status).toBe(0);
        const info = JSON.parse(qemuImgStatus('info', '--output=json', '-f', outcome.reads, path).stdout);
        expect(r.virtualSize).toBe(info['virtual-size']);
      });
    } else {
      it(`${name} is refused with a typed error`, async () => {
        expect(existsSync(path)).toBe(true);
        const err = await openImage(path).then(
          async (r) => {
            await r.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(GuestkitError);
        expect(outcome.refuses.some((cls) => err instanceof cls), String(err)).toBe(true);
        expect((err as GuestkitError).file).toBe(path);
      });
    }
  }
});
