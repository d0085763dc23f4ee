/**
 * -S 0 writes every byte of the output, holes and zeros included, as qemu-img convert -S 0 does
 * ("the destination is fully allocated"), whatever the source format: unallocated ranges and
 * zero clusters of a qcow2, VMDK, VHD or VDI source are written as zeros, and every output format
 * stores them (allocated units, no holes in the file).
 */
import { expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { describeOracle, qemuImg, qemuIo, qemuMapEntries } from '../helpers/oracle.js';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { writeFileSync } from 'node:fs';
import { workDir } from '../helpers/work.js';

const dir = workDir('sparse-zero');
const SIZE = 8 * 1024 * 1024;

/** 8 MiB: 1 MiB of data at 1 MiB, a zeroed 1 MiB at 4 MiB (zero clusters in qcow2), the rest unallocated. */
function sources(): Record<string, string> {
  const q = join(dir, 's.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', q, String(SIZE));
  qemuIo('qcow2', q, 'write -P 0x5a 1M 1M', 'write -z 4M 1M');
  const out: Record<string, string> = { qcow2: q };
  for (const f of ['vmdk', 'vpc', 'vdi']) {
    out[f] = join(dir, `s.${f}`);
    qemuImg('convert', '-f', 'qcow2', '-O', f, q, out[f]);
  }
  return out;
}

/** Bytes the output's files take on disk (every file the conversion made). */
function allocated(prefix: string): number {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .reduce((sum, f) => sum + statSync(join(dir, f)).blocks * 512, 0);
}

const outputs: Array<[string, string, string | undefined]> = [
  ['raw', 'raw', undefined],
  ['qcow2', 'qcow2', undefined],
  ['vmdk', 'vmdk', undefined],
  ['vmdk-flat', 'vmdk', 'subformat=monolithicFlat'],
  ['vmdk-split', 'vmdk', 'subformat=twoGbMaxExtentSparse'],
  ['vpc', 'vpc', undefined],
  ['vdi', 'vdi', undefined],
];

describeOracle('convert -S 0: a fully allocated output', () => {
  const src = sources();
  for (const [from, path] of Object.entries(src)) {
    for (const [label, format, options] of outputs) {
      it(`${from} → ${label}: every byte is data and takes space, as with qemu-img`, async () => {
        const prefix = `o-${from}-${label}`;
        const out = join(dir, `${prefix}.${format}`);
        await convert({ source: path, output: out, format, options, sparseSize: 0 });
        // The source's bytes (a VHD output may be a little larger: CHS rounding, as with qemu-img).
        const size = Number(JSON.parse(qemuImg('info', '--output=json', '-f', from, path))['virtual-size']);
        const data = qemuMapEntries(out, format)
          .filter((e) => e.data && e.start < size)
          .reduce((n, e) => n + Math.min(e.length, size - e.start), 0);
        expect(data).toBe(size);
        expect(allocated(prefix)).toBeGreaterThanOrEqual(size);
        expect(qemuImg('compare', '-f', from, '-F', format, path, out)).toMatch(/identical/);
      });
    }
  }

  it('streamOptimized: a grain for every grain of the disk', async () => {
    const out = join(dir, 'o-stream.vmdk');
    await convert({ source: src.qcow2, output: out, format: 'vmdk', options: 'subformat=streamOptimized', sparseSize: 0 });
    const data = qemuMapEntries(out, 'vmdk').filter((e) => e.data).reduce((n, e) => n + e.length, 0);
    expect(data).toBe(SIZE);
  });

  it('from the CLI (the repro: a qcow2 with 1 MiB of data to raw is allocated whole)', () => {
    const out = join(dir, 'cli.raw');
    const r = guestkit(['convert', '-S', '0', '-O', 'raw', src.qcow2, out]);
    expect(r.status).toBe(0);
    expect(statSync(out).blocks * 512).toBe(SIZE);
  });

  // Writers that plan from the allocation map (dynamic VHD/VDI, qcow2 to a pipe) must be told that
  // with -S 0 every block carries data; before, the pipe writers refused the first hole as data.
  for (const format of ['vpc', 'vdi', 'qcow2', 'vmdk']) {
    it(`to a pipe (-O ${format}): every byte is data`, () => {
      const r = guestkitBinary(['convert', '-S', '0', '-O', format, src.qcow2, '-']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = join(dir, `pipe-out.${format}`);
      writeFileSync(out, r.stdout);
      expect(qemuImg('compare', '-f', 'qcow2', '-F', format, src.qcow2, out)).toMatch(/identical/);
      const data = qemuMapEntries(out, format).filter((e) => e.data && e.start < SIZE).reduce((n, e) => n + Math.min(e.length, SIZE - e.start), 0);
      expect(data).toBe(SIZE);
    });
  }
});
