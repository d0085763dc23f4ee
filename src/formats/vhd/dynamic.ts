/**
 * The dynamic disk header and the block allocation table (BAT) of dynamic and differencing VHDs
 * (spec, "Dynamic Disk Header Format" and "Block Allocation Table and Data Blocks").
 * Every number from the file is bounded before it sizes an allocation: the BAT we load covers
 * only the blocks of the virtual disk and must lie inside the file, so its memory is bounded by
 * the file size whatever max_table_entries claims.
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { ceilDiv, isPowerOfTwo, limit } from '../shared/bounds.js';
import { bytesEqual } from '../shared/text.js';
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
  /** One entry per block of the virtual disk (not max_table_entries): sector of the block's bitmap, or BAT_UNUSED. */
  bat: Uint32Array;
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
  const bat = await readBat(source, tableOffset, entries);
  let allocatedBlocks = 0;
  for (let i = 0; i < entries; i++) {
    const e = bat[i];
    if (e === BAT_UNUSED) continue;
    allocatedBlocks++;
    // As qemu: every allocated block, bitmap and data, must lie inside the file.
    const end = e * SECTOR + bitmapSize + blockSize;
    if (end > fileSize) {
      throw new TruncatedImageError(`block ${i} (sector ${e}) ends at ${end}, past the end of the ${fileSize}-byte file: the image has been truncated`, {
        file,
        field: 'BAT',
        offset: tableOffset + i * 4,
      });
    }
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

/** Reads `entries` big-endian u32 in bounded chunks (no second full-size copy of the table). */
async function readBat(source: ByteSource, offset: number, entries: number): Promise<Uint32Array> {
  const bat = new Uint32Array(entries);
  const CHUNK = 64 * 1024;
  const buf = new Uint8Array(Math.min(entries, CHUNK) * 4);
  for (let done = 0; done < entries; ) {
    const n = Math.min(CHUNK, entries - done);
    const view = await source.read(offset + done * 4, n * 4, buf.subarray(0, n * 4));
    const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
    for (let i = 0; i < n; i++) bat[done + i] = dv.getUint32(i * 4);
    done += n;
  }
  return bat;
}
