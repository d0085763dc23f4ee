/**
 * Opening a VDI's metadata: the pre-header and header v1.1 (+ LCHS), validated, and the block
 * map. Shared by the reader and by check. What qemu 7.2's vdi_open refuses we refuse too (with
 * the exception of things that do not change how the data is found: an unaligned map or data
 * offset, a sector size other than 512, a block size other than 1 MiB — those we read). Sizes from
 * the header are bounded before use: the map we load must lie inside the file.
 */
import { CorruptImageError, TruncatedImageError, UnsupportedFeatureError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { isPowerOfTwo, limit, roundUp } from '../shared/bounds.js';
import { textUntilNul } from '../shared/text.js';
import { U32Table, isUniform } from '../shared/u32-table.js';
import { isNullUuid } from '../shared/uuid.js';
import {
  HEADER_SECTOR,
  HEADER_V1_PLUS_SIZE,
  HEADER_V1_SIZE,
  BLOCK_ZERO,
  LCHS_AT,
  SECTOR,
  VDI_HEADER,
  VDI_LCHS,
  VDI_SIGNATURE,
  VDI_VERSION_1_1,
  imageTypeName,
  isAllocated,
  type VdiHeader,
  type VdiLchs,
} from './layout.js';

/**
 * qemu's VDI_BLOCKS_IN_IMAGE_MAX: the map is read in one request below INT_MAX bytes
 * ((2^31 − 512) / 4 entries). Larger maps are refused, as qemu does.
 */
export const MAX_BLOCKS_IN_IMAGE = 0x1fff_ff80;
/** Block sizes we read: powers of two from a sector to 2 GiB (VirtualBox requires a power of two). */
export const MIN_BLOCK_SIZE = SECTOR;
export const MAX_BLOCK_SIZE = 2 ** 31;

/** The pre-header text VirtualBox, Sun, innotek and qemu write: "<<< … >>>\n". */
const TEXT_PATTERN = /^<<< .* >>>\n?$/s;

export interface VdiImage {
  header: VdiHeader;
  lchs?: VdiLchs;
  text: string;
  subformat: 'dynamic' | 'static';
  /** disk_size rounded up to a sector, as qemu does ('VBoxManage convertfromraw' writes odd sizes). */
  virtualSize: number;
  blockSize: number;
  blockExtra: number;
  /** blocks_in_image entries, read in windows (a hostile map may be gigabytes of a sparse file). */
  map: U32Table;
  /** Map entries that point at a block (below 0xFFFFFFFE), counted. */
  allocatedEntries: number;
  /** Map entries of discarded blocks (BLOCK_ZERO), counted. */
  zeroEntries: number;
  /** Blocks the data area of the file has room for (the last one may be partial). */
  dataSlots: number;
  /** The first virtual block whose entry names a slot past the end of the file, or -1. */
  firstPastFile: number;
  warnings: string[];
}

const where = (file: string, field: keyof VdiHeader) => ({ file, field: String(field), offset: VDI_HEADER.offsetOf(field) });

export async function readVdiImage(source: ByteSource, file: string): Promise<VdiImage> {
  if (!source.seekable || source.size === undefined) {
    throw new UnsupportedFeatureError('a VDI cannot be read from a pipe (its blocks are stored in any order); save it to a file first', { file });
  }
  const fileSize = source.size;
  const headBytes = await source.readUpTo(0, HEADER_SECTOR);
  if (headBytes.length < VDI_HEADER.size) {
    throw new TruncatedImageError(`file of ${fileSize} bytes is too small for a VDI header (${VDI_HEADER.size} bytes)`, { file, field: 'header', offset: 0 });
  }
  const h = VDI_HEADER.parse(headBytes, { file });
  const warnings: string[] = [];

  if (h.signature !== VDI_SIGNATURE) {
    throw new CorruptImageError(`not a VDI image: signature is 0x${h.signature.toString(16)}, expected 0x${VDI_SIGNATURE.toString(16)}`, where(file, 'signature'));
  }
  if (h.version !== VDI_VERSION_1_1) {
    throw new UnsupportedFeatureError(`unsupported VDI header version ${h.version >>> 16}.${h.version & 0xffff} (only 1.1 is supported)`, where(file, 'version'));
  }
  const text = textUntilNul(h.text);
  if (!TEXT_PATTERN.test(text)) warnings.push(`pre-header text ${JSON.stringify(text)} is not the usual "<<< … >>>" line`);
  if (h.headerSize < HEADER_V1_SIZE) {
    warnings.push(`header size 0x${h.headerSize.toString(16)} is smaller than a v1.1 header (0x${HEADER_V1_SIZE.toString(16)})`);
  }
  let lchs: VdiLchs | undefined;
  if (h.headerSize >= HEADER_V1_PLUS_SIZE && headBytes.length >= LCHS_AT + VDI_LCHS.size) lchs = VDI_LCHS.parse(headBytes, { file }, LCHS_AT);

  const subformat = imageTypeName(h.imageType);
  if (subformat !== 'dynamic' && subformat !== 'static') {
    throw new UnsupportedFeatureError(`VDI image type ${h.imageType}${subformat ? ` (${subformat})` : ''} is not supported: only normal (dynamic) and fixed (static) images`, where(file, 'imageType'));
  }
  // Differencing VDIs (snapshots) name their parent by UUID only; qemu refuses them too.
  if (!isNullUuid(h.uuidLinkage)) throw new UnsupportedFeatureError('differencing VDI images (non-null link UUID) are not supported', where(file, 'uuidLinkage'));
  if (!isNullUuid(h.uuidParentModify)) {
    throw new UnsupportedFeatureError('differencing VDI images (non-null parent UUID) are not supported', where(file, 'uuidParentModify'));
  }
  if (h.sectorSize !== SECTOR) warnings.push(`legacy geometry sector size is ${h.sectorSize}, not 512 (qemu refuses such images; data is addressed in bytes, so it is read anyway)`);

  const blockSize = h.blockSize;
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new CorruptImageError(`block size ${blockSize} is not a power of two from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE}`, where(file, 'blockSize'));
  }
  const blockExtra = h.blockExtra;
  // VirtualBox requires the extra area to be a power of two too; it lies before each block's data.
  if (blockExtra !== 0 && !isPowerOfTwo(blockExtra)) {
    throw new CorruptImageError(`block extra size ${blockExtra} is not zero or a power of two`, where(file, 'blockExtra'));
  }
  limit(h.blocksInImage, MAX_BLOCKS_IN_IMAGE, where(file, 'blocksInImage'), 'too many blocks: the block map would exceed 2 GiB');
  const virtualSize = roundUp(h.diskSize, SECTOR);
  if (virtualSize > h.blocksInImage * blockSize) {
    throw new CorruptImageError(`disk size ${h.diskSize} does not fit in ${h.blocksInImage} blocks of ${blockSize} bytes`, where(file, 'diskSize'));
  }
  const mapBytes = h.blocksInImage * 4;
  if (h.offBlocks + mapBytes > fileSize) {
    throw new TruncatedImageError(`the block map (${h.blocksInImage} entries at ${h.offBlocks}) extends past the end of the ${fileSize}-byte file`, where(file, 'offBlocks'));
  }
  if (h.offData < h.offBlocks + mapBytes && h.offBlocks < h.offData + h.blocksAllocated * (blockSize + blockExtra)) {
    warnings.push(`the data area (offset ${h.offData}) overlaps the block map (${h.offBlocks}..${h.offBlocks + mapBytes})`);
  }
  const map = new U32Table({ source, offset: h.offBlocks, entries: h.blocksInImage, littleEndian: true, field: 'offBlocks' });
  const dataSlots = Math.max(0, Math.ceil((fileSize - h.offData) / (blockSize + blockExtra)));
  let allocatedEntries = 0;
  let zeroEntries = 0;
  let firstPastFile = -1;
  await map.walk((start, entries) => {
    if (isUniform(entries)) {
      const e = entries[0];
      if (isAllocated(e)) {
        allocatedEntries += entries.length;
        if (e >= dataSlots && firstPastFile < 0) firstPastFile = start;
      } else if (e === BLOCK_ZERO) zeroEntries += entries.length;
      return;
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (isAllocated(e)) {
        allocatedEntries++;
        if (e >= dataSlots && firstPastFile < 0) firstPastFile = start + i;
      } else if (e === BLOCK_ZERO) zeroEntries++;
    }
  });
  if (allocatedEntries !== h.blocksAllocated) {
    warnings.push(`the header counts ${h.blocksAllocated} allocated blocks but the block map has ${allocatedEntries}`);
  }
  return { header: h, lchs, text, subformat, virtualSize, blockSize, blockExtra, map, allocatedEntries, zeroEntries, dataSlots, firstPastFile, warnings };
}
