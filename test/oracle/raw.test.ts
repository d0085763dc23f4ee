import { expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImg, qemuIo, qemuToRaw } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { convert } from '../../src/api/convert.js';
import { openImage } from '../../src/formats/open.js';

describeOracle('raw against qemu-img', () => {
  const dir = workDir('oracle-raw');

  it('reads a qemu-io-written raw image byte for byte as qemu-img does, and writes one qemu-img compares equal', async () => {
    const src = join(dir, 'src.raw');
    qemuImg('create', '-f', 'raw', src, '9M');
    qemuIo('raw', src, 'write -P 0xab 0 64k', 'write -P 0xcd 5M 4k', 'write -P 0x11 9215k 1k');
    const ref = join(dir, 'ref.raw');
    qemuToRaw(src, ref, 'raw');
    const r = await openImage(src);
    const ours = await r.read(0, r.virtualSize);
    await r.close();
    expect(Buffer.compare(Buffer.from(ours), readFileSync(ref))).toBe(0);

    const out = join(dir, 'out.raw');
    const res = await convert({ source: src, output: out, format: 'raw' });
    expect(res.outputSize).toBe(9 * 1024 * 1024);
    expect(qemuImg('compare', '-f', 'raw', '-F', 'raw', src, out)).toMatch(/Images are identical/);
    // Only the written data is allocated: holes elsewhere (the first 64 KiB + 4 KiB + 1 KiB, block-rounded).
    expect(statSync(out).blocks * 512).toBeLessThanOrEqual(256 * 1024);
  });

  it('agrees with qemu-img info on the virtual size of an odd-sized raw file', async () => {
    const src = join(dir, 'odd.raw');
    qemuImg('create', '-f', 'raw', src, '1000000');
    const q = JSON.parse(qemuImg('info', '--output=json', '-f', 'raw', src));
    const r = await openImage(src);
    expect(r.virtualSize).toBe(q['virtual-size']);
    await r.close();
  });
});
