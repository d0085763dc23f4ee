/**
 * libvhdi (Debian python3-libvhdi 20210425, module pyvhdi) as an independent VHD reader that
 * honours parents: qemu opens a differencing disk as a dynamic one and ignores its parent, so it
 * is no oracle for chains.
 *
 * Two libvhdi bugs bound what it can judge (found while writing these tests):
 *  - libvhdi_block_descriptor_read_sector_bitmap_data computes a bit as `byte >> (7 - i)` without
 *    masking, so once a bit is set every later sector of the same byte counts as present. Runs of
 *    present sectors must therefore end on a multiple of 8 sectors for libvhdi to read them right;
 *    arbitrary bitmaps are checked against an independent model instead (chain.test.ts).
 *  - a single read that spans a block boundary of a differencing disk can lose the data of the
 *    second block; reads are made here in 4 KiB steps, which never cross a block.
 */
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

export const PYVHDI = spawnSync(PYTHON, ['-c', 'import pyvhdi'], { stdio: 'ignore' }).status === 0;

const SCRIPT = `
import sys, pyvhdi
paths = sys.argv[1:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
top = files[0]
sys.stdout.write("%d\\n" % top.media_size)
sys.stdout.flush()
size = top.media_size
step = 4096
off = 0
while off < size:
    n = min(step, size - off)
    sys.stdout.buffer.write(top.read_buffer_at_offset(n, off))
    off += n
`;

/** Reads the whole virtual disk of a chain (child first, then each parent) with libvhdi. */
export function readWithLibvhdi(chain: string[]): { size: number; data: Buffer } {
  const r = spawnSync(PYTHON, ['-c', SCRIPT, ...chain], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`pyvhdi failed: ${r.stderr.toString()}`);
  const nl = r.stdout.indexOf(10);
  return { size: Number(r.stdout.subarray(0, nl).toString()), data: r.stdout.subarray(nl + 1) };
}
