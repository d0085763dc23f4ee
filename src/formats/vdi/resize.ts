/**
 * Growing static and dynamic VDIs in place (qemu-img cannot: its vdi driver has no truncate).
 * The new size is rounded as the writer rounds it (planVdi: whole sectors); the block size, the
 * layout and the image UUID stay; the modification UUID changes, as VirtualBox changes it on write.
 *
 * The block map grows into the room before the data area when there is some. When there is not
 * (qemu's layout leaves the map at most a sector of slack), the first k blocks of the data area, by
 * position, are copied to the end and their map entries switched to the copies; then offData rises
 * by k blocks, so every stored block index drops by k and the freed space holds the longer map.
 * Static images stay fully allocated: their new blocks are appended (holes, reading as zeros).
 */
import { CorruptImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import { ceilDiv } from '../shared/bounds.js';
import { checkShrink, targetSize, withImageFile, writeZeros, copyWithin, type ImageFile } from '../shared/resize.js';
import type { ResizeOptions, ResizeResult, ResizeTarget } from '../types.js';
import { randomUuid } from '../shared/uuid.js';
import { checkVdiImage } from './check.js';
import { readVdiImage, type VdiImage } from './image.js';
import { BLOCK_FREE, HEADER_SECTOR, VDI_HEADER, isAllocated } from './layout.js';
import { MAX_WRITE_BLOCKS, planVdi } from './writer.js';


export async function resizeVdi(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult> {
  const file = opts.ctx.file;
  return withImageFile(path, file, async (f) => {
    const img = await readVdiImage(f.source, file);
    const oldSize = img.virtualSize;
    const newSize = planVdi(targetSize(target, oldSize, file)).size;
    checkShrink(newSize, oldSize, opts, 'vdi', false, 'a VDI only grows');
    if (newSize === oldSize) return { format: 'vdi', oldSize, newSize };
    const damaged = await checkVdiImage(img, file);
    if (damaged.corruptions) {
      throw new CorruptImageError(`the block map is inconsistent (${damaged.messages[0]}); repair the image before resizing`, { file, field: 'block map', offset: img.header.offBlocks });
    }
    await grow(f, img, newSize, file);
    return { format: 'vdi', oldSize, newSize };
  });
}

async function grow(f: ImageFile, img: VdiImage, newSize: number, file: string): Promise<void> {
  const h = img.header;
  const stride = img.blockSize + img.blockExtra;
  const oldBlocks = h.blocksInImage;
  const newBlocks = Math.max(oldBlocks, ceilDiv(newSize, img.blockSize));
  if (newBlocks > MAX_WRITE_BLOCKS) throw new UsageError(`${newSize} bytes needs ${newBlocks} VDI blocks, more than the ${MAX_WRITE_BLOCKS} supported`, { file });
  if (h.offBlocks < HEADER_SECTOR || h.offBlocks >= h.offData) {
    throw new UnsupportedFeatureError(`the block map at ${h.offBlocks} does not lie between the header and the data area (${h.offData}): layout not supported for resizing`, {
      file,
      field: 'offBlocks',
      offset: VDI_HEADER.offsetOf('offBlocks'),
    });
  }
  // The map is rewritten whole; its size is bounded by MAX_WRITE_BLOCKS above.
  const map = new Uint32Array(newBlocks).fill(BLOCK_FREE);
  map.set(await img.map.readAll());
  // Blocks of the data area in use: indices are unique and below blocks_in_image (checked above).
  let top = -1;
  for (let b = 0; b < oldBlocks; b++) if (isAllocated(map[b])) top = Math.max(top, map[b]);
  // Room for the map before the data area, in whole blocks to vacate (offData moves by whole blocks).
  const k = Math.max(0, ceilDiv(h.offBlocks + newBlocks * 4 - h.offData, stride));
  // First free index at the end of the data area; never below k, so that no index goes negative
  // when offData rises by k blocks.
  let next = Math.max(top + 1, k);
  const blockAt = (index: number, offData: number) => offData + index * stride;
  const fileSize = f.source.size;

  if (k > 0) {
    // 1. Copy the blocks stored in the first k slots to the end, make the copies durable (one
    //    sync), then switch their entries one by one (each a 4-byte write: the old image stays
    //    whole and readable throughout).
    const moved: number[] = [];
    for (let b = 0; b < oldBlocks; b++) {
      if (!isAllocated(map[b]) || map[b] >= k) continue;
      await copyWithin(f, blockAt(map[b], h.offData), blockAt(next + moved.length, h.offData), stride);
      moved.push(b);
    }
    await f.sink.sync();
    const entry = new Uint8Array(4);
    for (const b of moved) {
      map[b] = next++;
      new DataView(entry.buffer).setUint32(0, map[b], true);
      await f.sink.write(h.offBlocks + b * 4, entry);
    }
  }
  const offData = h.offData + k * stride;
  // From here on indices are relative to the new offData: every stored index drops by k.
  for (let b = 0; b < oldBlocks; b++) if (isAllocated(map[b])) map[b] -= k;
  next -= k;
  let allocated = h.blocksAllocated;
  if (img.subformat === 'static') {
    // Static images stay fully allocated: new blocks go after the last one, reading as zeros.
    const first = next;
    for (let b = oldBlocks; b < newBlocks; b++, allocated++) map[b] = next++;
    const from = blockAt(first, offData);
    const to = blockAt(next, offData);
    if (from < fileSize) await writeZeros(f, from, Math.min(to, fileSize));
    if (to > fileSize) await f.sink.setLength(to);
  }
  // 2. The part of the last block past the old size becomes disk: make it zeros.
  const inBlock = img.virtualSize % img.blockSize;
  const last = Math.floor(img.virtualSize / img.blockSize);
  if (inBlock && isAllocated(map[last])) {
    const data = blockAt(map[last], offData) + img.blockExtra;
    await writeZeros(f, data + inBlock, data + img.blockSize);
  }
  await f.sink.sync();

  // 3. The switch: header (and, when offData moved, the whole map) in one write.
  const head = await f.source.read(0, h.offBlocks);
  VDI_HEADER.serialize({ ...h, offData, diskSize: newSize, blocksInImage: newBlocks, blocksAllocated: allocated, uuidModify: randomUuid('guid') }, head);
  const mapBytes = new Uint8Array(k > 0 ? offData - h.offBlocks : (newBlocks - oldBlocks) * 4);
  const dv = new DataView(mapBytes.buffer);
  const from = k > 0 ? 0 : oldBlocks;
  for (let b = from; b < newBlocks; b++) dv.setUint32((b - from) * 4, map[b], true);
  if (k > 0) {
    // offData and every map entry change together, and they lie in different sectors: no single
    // sector write can switch them, so the header, the gap and the map go out in one write call
    // (whole or not at all if the process dies; torn only by a power loss in the middle of it).
    const all = new Uint8Array(offData);
    all.set(head);
    all.set(mapBytes, h.offBlocks);
    await f.sink.write(0, all);
  } else {
    // New entries lie past blocks_in_image, invisible until the header counts them.
    await f.sink.write(h.offBlocks + oldBlocks * 4, mapBytes);
    await f.sink.sync();
    await f.sink.write(0, head.subarray(0, Math.min(head.length, HEADER_SECTOR)));
  }
  await f.sink.sync();
}
