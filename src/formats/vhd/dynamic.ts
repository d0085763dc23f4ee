/**
 * The dynamic disk header and the block allocation table (BAT) of dynamic and differencing VHDs
 * (spec, "Dynamic Disk Header Format" and "Block Allocation Table and Data Blocks").
 * Every number from the file is bounded before it sizes an allocation: the BAT covers only the
 * blocks of the virtual disk, must lie inside the file, and is read in windows, so its memory is
 * bounded whatever max_table_entries and the file size claim.
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { ceilDiv, isPowerOfTwo, limit } from '../shared/bounds.js';
import { bytesEqual } from '../shared/text.js';
import { U32Table, isUniform } from '../shared/u32-table.js';
import {
  BAT_UNUSED,
  DYNAMIC_COOKIE,
  DYNAMIC_HEADER,
  DYNAMIC_HEADER_CHECKSUM_AT,
  DYNAMIC_HEADER_SIZE,
  NO_DATA_OFFSET,
  PARENT_LOCATOR,
  PARENT_LOCATOR_AT,
  PARENT_LOCATOR_COUNT,
  SECTOR,
  bitmapSizeFor,
  vhdChecksum,
  type VhdDynamicHeader,
  type VhdFooter,
  type VhdParentLocator,
} from './layout.js';

/**
 * qemu refuses more than INT_MAX / 4 entries ("Max Table Entries too large"): the whole table is
 * read in one request of at most 2 GiB. We refuse the same images.
 */
export const MAX_TABLE_ENTRIES = 0x1fff_ffff;
/** Blocks are at least a sector (qemu: "Invalid block size") and a u32 power of two at most. */
export const MIN_BLOCK_SIZE = SECTOR;

export interface DynamicLayout {
  header: VhdDynamicHeader;
  headerOffset: number;
  blockSize: number;
  bitmapSize: number;
  /**
   * One entry per block of the virtual disk (not max_table_entries): sector of the block's bitmap,
   * or BAT_UNUSED. Read in windows: a hostile header may state hundreds of millions of entries.
   */
  bat: U32Table;
  allocatedBlocks: number;
  /** The 1024 header bytes, for the parent locators. */
  headerBytes: Uint8Array;
}

export async function readDynamicLayout(
  source: ByteSource,
  fileSize: number,
  file: string,
  footer: VhdFooter,
  footerAt: number,
  virtualSize: number,
): Promise<DynamicLayout> {
  const dataOffsetField = { file, field: 'dataOffset', offset: footerAt + 16 };
  if (footer.dataOffset === NO_DATA_OFFSET || footer.dataOffset > BigInt(Math.max(0, fileSize - DYNAMIC_HEADER_SIZE))) {
    throw new TruncatedImageError(`the dynamic header offset ${footer.dataOffset} leaves no room for a ${DYNAMIC_HEADER_SIZE}-byte header in a ${fileSize}-byte file`, dataOffsetField);
  }
  const headerOffset = Number(footer.dataOffset);
  const raw = await source.read(headerOffset, DYNAMIC_HEADER_SIZE);
  if (!bytesEqual(raw, 0, DYNAMIC_COOKIE)) {
    throw new CorruptImageError(`no dynamic disk header ("${DYNAMIC_COOKIE}") at offset ${headerOffset}`, { file, field: 'cookie', offset: headerOffset });
  }
  // qemu 7.2 does not verify this checksum; the spec defines it and libvhdi checks it, and a header
  // that fails it cannot be trusted for the BAT offset and block size.
  const stored = new DataView(raw.buffer, raw.byteOffset).getUint32(DYNAMIC_HEADER_CHECKSUM_AT);
  const computed = vhdChecksum(raw, DYNAMIC_HEADER_CHECKSUM_AT);
  if (stored !== computed) {
    throw new CorruptImageError(`dynamic header checksum is 0x${stored.toString(16)}, but the header sums to 0x${computed.toString(16)}`, {
      file,
      field: 'checksum',
      offset: headerOffset + DYNAMIC_HEADER_CHECKSUM_AT,
    });
  }
  const header = DYNAMIC_HEADER.parse(raw, { file, base: headerOffset });
  const at = (f: keyof VhdDynamicHeader) => headerOffset + DYNAMIC_HEADER.offsetOf(f);

  const blockSize = header.blockSize;
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE) {
    throw new CorruptImageError(`block size ${blockSize} is not a power of two of at least ${MIN_BLOCK_SIZE}`, { file, field: 'blockSize', offset: at('blockSize') });
  }
  limit(header.maxTableEntries, MAX_TABLE_ENTRIES, { file, field: 'maxTableEntries', offset: at('maxTableEntries') }, 'too large: the BAT would exceed 2 GiB');
  if (header.maxTableEntries * blockSize < virtualSize) {
    throw new CorruptImageError(`the BAT has ${header.maxTableEntries} entries of ${blockSize} bytes, too few for the ${virtualSize}-byte disk`, {
      file,
      field: 'maxTableEntries',
      offset: at('maxTableEntries'),
    });
  }
  const bitmapSize = bitmapSizeFor(blockSize);
  const entries = ceilDiv(virtualSize, blockSize);
  const tableOffset = header.tableOffset;
  if (tableOffset + entries * 4 > fileSize) {
    throw new TruncatedImageError(`the BAT (${entries} entries at ${tableOffset}) extends past the end of the ${fileSize}-byte file`, {
      file,
      field: 'tableOffset',
      offset: at('tableOffset'),
    });
  }
  const bat = new U32Table({ source, offset: tableOffset, entries, littleEndian: false, field: 'tableOffset' });
  let allocatedBlocks = 0;
  let bad = -1;
  await bat.walk((start, chunk) => {
    if (bad >= 0) return;
    // As qemu: every allocated block, bitmap and data, must lie inside the file.
    const lastSector = (fileSize - bitmapSize - blockSize) / SECTOR;
    if (isUniform(chunk)) {
      if (chunk[0] === BAT_UNUSED) return;
      allocatedBlocks += chunk.length;
      if (chunk[0] > lastSector) bad = start;
      return;
    }
    for (let i = 0; i < chunk.length; i++) {
      const e = chunk[i];
      if (e === BAT_UNUSED) continue;
      allocatedBlocks++;
      if (e > lastSector) {
        bad = start + i;
        return;
      }
    }
  });
  if (bad >= 0) {
    const e = await bat.at(bad);
    const end = e * SECTOR + bitmapSize + blockSize;
    throw new TruncatedImageError(`block ${bad} (sector ${e}) ends at ${end}, past the end of the ${fileSize}-byte file: the image has been truncated`, {
      file,
      field: 'BAT',
      offset: tableOffset + bad * 4,
    });
  }
  // Every writer gives each block its own bitmap and data in the file; more allocated blocks than the
  // file can hold means blocks share (and overlap) storage — a crafted BAT (a hole of zeros names
  // sector 0 hundreds of millions of times), whose map would be one extent per block.
  const room = Math.ceil(fileSize / (bitmapSize + blockSize));
  if (allocatedBlocks > room) {
    throw new CorruptImageError(`the BAT names ${allocatedBlocks} allocated blocks, but the ${fileSize}-byte file holds at most ${room} blocks of ${blockSize} bytes`, {
      file,
      field: 'BAT',
      offset: tableOffset,
    });
  }
  return { header, headerOffset, headerBytes: raw, blockSize, bitmapSize, bat, allocatedBlocks };
}

/**
 * The eight parent locator entries, parsed only for differencing disks (a dynamic disk's unused
 * entries must not make it unreadable).
 */
export function parentLocators(layout: DynamicLayout, file: string): VhdParentLocator[] {
  const out: VhdParentLocator[] = [];
  for (let i = 0; i < PARENT_LOCATOR_COUNT; i++) {
    out.push(PARENT_LOCATOR.parse(layout.headerBytes, { file, base: layout.headerOffset }, PARENT_LOCATOR_AT + i * PARENT_LOCATOR.size));
  }
  return out;
}
