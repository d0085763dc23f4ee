/**
 * Resizing a raw image: the file is the disk, so growing extends it with a hole (reads as zeros,
 * takes no space) and shrinking cuts it — one ftruncate either way, nothing to order.
 *
 * As qemu-img: the current size is the file size rounded up to whole sectors (the block layer
 * counts sectors), which is what `+SIZE` adds to and what decides whether a size shrinks; the new
 * size itself is kept to the byte.
 */
import { roundUp } from '../shared/bounds.js';
import { checkShrink, targetSize, withImageFile } from '../shared/resize.js';
import type { ResizeOptions, ResizeResult, ResizeTarget } from '../types.js';

const SECTOR = 512;

export async function resizeRaw(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult> {
  return withImageFile(path, opts.ctx.file, async ({ source, sink }) => {
    const oldSize = source.size;
    const current = roundUp(oldSize, SECTOR);
    const newSize = targetSize(target, current, opts.ctx.file);
    checkShrink(newSize, current, opts, 'raw', true);
    if (newSize !== oldSize) {
      await sink.setLength(newSize);
      await sink.sync();
    }
    return { format: 'raw', oldSize, newSize };
  });
}
