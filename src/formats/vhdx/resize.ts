/**
 * Growing dynamic and fixed VHDX in place (qemu-img cannot: its vhdx driver has no truncate).
 * Payload and sector bitmap entries keep their BAT index when the disk grows (the index depends on
 * the chunk ratio, which the block and sector sizes fix), so the BAT only gets longer: in place
 * when its region has room, otherwise copied to a new 1 MiB aligned region at the end of the file
 * and both region tables pointed at it. Fixed disks get their new blocks appended, FULLY_PRESENT
 * (holes, reading as zeros). The virtual disk size item is rewritten and the header updated with
 * a higher sequence number and new write GUIDs (2.2.2: a new DataWriteGuid when the disk changes).
 * Images with a pending log or a parent are refused: replaying a log into the file is a write we
 * do not make.
 */
import { CorruptImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import { roundUp } from '../shared/bounds.js';
import { checkShrink, targetSize, withImageFile } from '../shared/resize.js';
import { randomUuid } from '../shared/uuid.js';
import type { ResizeOptions, ResizeResult, ResizeTarget } from '../types.js';
import { checkVhdx } from './check.js';
import { readVhdxImage } from './image.js';
import { ALIGNMENT, HEADER_OFFSETS, ITEM_VIRTUAL_DISK_SIZE, METADATA_ENTRY, METADATA_TABLE_HEADER, PayloadState, REGION_TABLE_OFFSETS, batEntries, payloadIndex } from './layout.js';
import { headerBytes, regionTableBytes, setBatEntry } from './plan.js';
import { MAX_WRITE_BLOCKS } from './writer.js';
import { uuidEqual } from '../shared/uuid.js';

export async function resizeVhdx(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult> {
  const file = opts.ctx.file;
  return withImageFile(path, file, async (f) => {
    const { image: img } = await readVhdxImage(f.source, file);
    const oldSize = img.virtualSize;
    const newSize = roundUp(targetSize(target, oldSize, file), img.logicalSectorSize);
    checkShrink(newSize, oldSize, opts, 'vhdx', false, 'a VHDX only grows');
    if (newSize === oldSize) return { format: 'vhdx', oldSize, newSize };
    if (img.log) throw new UnsupportedFeatureError('the image has a pending log; replay it (qemu-img check -r all) before resizing', { file, field: 'log', offset: img.header.logOffset });
    if (img.hasParent) throw new UnsupportedFeatureError('resizing a differencing VHDX is not supported', { file, field: 'file parameters' });
    const damaged = await checkVhdx(f.source, opts.ctx);
    if (damaged.corruptions) throw new CorruptImageError(`the BAT is inconsistent (${damaged.messages.find((m) => m.startsWith('ERROR'))}); repair the image before resizing`, { file, field: 'BAT', offset: img.bat.fileOffset });
    const oldBlocks = Math.ceil(oldSize / img.blockSize);
    const newBlocks = Math.ceil(newSize / img.blockSize);
    if (newBlocks > MAX_WRITE_BLOCKS) throw new UsageError(`${newSize} bytes needs ${newBlocks} blocks, more than the ${MAX_WRITE_BLOCKS} supported`, { file });
    const oldEntries = img.batEntries;
    const newEntries = batEntries(newSize, img.blockSize, img.logicalSectorSize, false);
    let end = roundUp(img.fileSize, ALIGNMENT);
    let batOffset = img.bat.fileOffset;
    let batLength = img.bat.length;
    const oldBat = await f.source.read(img.bat.fileOffset, oldEntries * 8);
    const fresh = new Uint8Array((newEntries - oldEntries) * 8);
    if (newEntries * 8 > batLength) {
      batOffset = end;
      batLength = roundUp(newEntries * 8, ALIGNMENT);
      end = batOffset + batLength;
      await f.sink.write(batOffset, oldBat);
    }
    const dv = new DataView(fresh.buffer);
    const ratio = img.chunkRatio;
    for (let b = oldBlocks; b < newBlocks; b++) {
      const at = (payloadIndex(b, ratio) - oldEntries) * 8;
      if (img.leaveBlocksAllocated) {
        setBatEntry(dv, at, PayloadState.fullyPresent, end);
        end += img.blockSize;
      } else setBatEntry(dv, at, PayloadState.zero, 0);
    }
    await f.sink.write(batOffset + oldEntries * 8, fresh);
    // A fixed disk's old last block is whole already (writers allocate whole blocks); the new ones are holes.
    if (end > f.source.size) await f.sink.setLength(end);
    // Metadata: the virtual disk size item, found through the table.
    const table = await f.source.read(img.metadata.fileOffset, 65536);
    const h = METADATA_TABLE_HEADER.parse(table);
    for (let i = 0; i < h.entryCount; i++) {
      const e = METADATA_ENTRY.parse(table, {}, METADATA_TABLE_HEADER.size + i * METADATA_ENTRY.size);
      if (uuidEqual(e.itemId, ITEM_VIRTUAL_DISK_SIZE)) {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, BigInt(newSize), true);
        await f.sink.write(img.metadata.fileOffset + e.offset, b);
      }
    }
    if (batOffset !== img.bat.fileOffset) {
      const regions = regionTableBytes({ batOffset, batSize: batLength, metadataOffset: img.metadata.fileOffset, metadataSize: img.metadata.length });
      for (const at of REGION_TABLE_OFFSETS) await f.sink.write(at, regions);
    }
    const hdr = img.header;
    const id = { fileWriteGuid: randomUuid('guid'), dataWriteGuid: randomUuid('guid'), page83: img.page83 };
    const plan = { logOffset: hdr.logOffset, logSize: hdr.logLength };
    // Both headers, the current one last, so that the valid one with the higher sequence is always whole.
    const other = 1 - img.headerIndex;
    await f.sink.write(HEADER_OFFSETS[other], headerBytes(plan, id, hdr.sequenceNumber + 1n));
    await f.sink.write(HEADER_OFFSETS[img.headerIndex], headerBytes(plan, id, hdr.sequenceNumber + 2n));
    return { format: 'vhdx', oldSize, newSize };
  });
}
