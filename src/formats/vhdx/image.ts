/**
 * Opening a VHDX's metadata (MS-VHDX 2.2–2.6): file identifier, the current header, the region
 * table, the log (replayed in memory), the metadata items. Shared by the reader, check and resize.
 * The BAT is not loaded here: readers look entries up through a windowed cache (bat.ts).
 */
import { CorruptImageError, TruncatedImageError, UnsupportedFeatureError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { inRange, isPowerOfTwo, limit } from '../shared/bounds.js';
import { crc32c } from '../shared/crc32c.js';
import { formatUuid, uuidEqual } from '../shared/uuid.js';
import { readLog, type LogReplay } from './log.js';
import {
  ALIGNMENT,
  CHECKSUM_AT,
  FILE_ID,
  FILE_PARAMETERS,
  FILE_SIGNATURE,
  HEADER_OFFSETS,
  HEADER_SIGNATURE,
  HEADER_SIZE,
  ITEM_FILE_PARAMETERS,
  ITEM_LOGICAL_SECTOR_SIZE,
  ITEM_PAGE83,
  ITEM_PARENT_LOCATOR,
  ITEM_PHYSICAL_SECTOR_SIZE,
  ITEM_VIRTUAL_DISK_SIZE,
  MAX_BLOCK_SIZE,
  MAX_METADATA_ENTRIES,
  MAX_REGION_ENTRIES,
  MAX_VIRTUAL_SIZE,
  METADATA_ENTRY,
  METADATA_IS_REQUIRED,
  METADATA_SIGNATURE,
  METADATA_TABLE_HEADER,
  MIN_BLOCK_SIZE,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  REGION_BAT,
  REGION_ENTRY,
  REGION_METADATA,
  REGION_REQUIRED,
  REGION_TABLE_HEADER,
  REGION_TABLE_OFFSETS,
  TABLE_SIZE,
  VHDX_HEADER,
  VHDX_VERSION,
  batEntries,
  chunkRatio,
  type MetadataEntry,
  type RegionEntry,
  type VhdxHeader,
} from './layout.js';
import { ReplayedSource } from './replayed-source.js';
import { parseParentLocator, type ParentLocator } from './parent-locator.js';

/** Metadata items are small (the parent locator is the largest: paths); 1 MiB bounds a hostile one. */
export const MAX_METADATA_ITEM = 1024 * 1024;

export interface VhdxImage {
  fileSize: number;
  creator: string;
  header: VhdxHeader;
  headerIndex: 0 | 1;
  headerOffset: number;
  bat: RegionEntry;
  metadata: RegionEntry;
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  page83: Uint8Array;
  parentLocator?: ParentLocator;
  chunkRatio: number;
  batEntries: number;
  subformat: 'fixed' | 'dynamic' | 'differencing';
  /** The replayed log, when the image had one pending. */
  log?: LogReplay;
  warnings: string[];
}

const utf16 = new TextDecoder('utf-16le');

function validHeader(buf: Uint8Array): boolean {
  try {
    const h = VHDX_HEADER.parse(buf);
    return h.signature === HEADER_SIGNATURE && crc32c(buf.subarray(0, HEADER_SIZE), CHECKSUM_AT) === h.checksum;
  } catch {
    return false;
  }
}

/** The current header: of the valid ones, the one with the larger sequence number (2.2.2.1). */
export async function currentHeader(source: ByteSource, file: string, warnings: string[]): Promise<{ header: VhdxHeader; index: 0 | 1 }> {
  const found: Array<{ header: VhdxHeader; index: 0 | 1 }> = [];
  for (const index of [0, 1] as const) {
    const buf = await source.readUpTo(HEADER_OFFSETS[index], HEADER_SIZE);
    if (buf.length === HEADER_SIZE && validHeader(buf)) found.push({ header: VHDX_HEADER.parse(buf), index });
    else warnings.push(`header ${index + 1} (offset ${HEADER_OFFSETS[index]}) is damaged (bad signature or CRC-32C); the other one is used`);
  }
  if (found.length === 0) throw new CorruptImageError('neither VHDX header is valid (signature or CRC-32C)', { file, field: 'header', offset: HEADER_OFFSETS[0] });
  found.sort((a, b) => (a.header.sequenceNumber > b.header.sequenceNumber ? -1 : a.header.sequenceNumber < b.header.sequenceNumber ? 1 : a.index - b.index));
  const cur = found[0];
  const at = HEADER_OFFSETS[cur.index];
  if (cur.header.version !== VHDX_VERSION) {
    throw new UnsupportedFeatureError(`VHDX version ${cur.header.version} is not supported (only 1)`, { file, field: 'Version', offset: at + VHDX_HEADER.offsetOf('version') });
  }
  return cur;
}

async function regionTable(source: ByteSource, file: string, warnings: string[]): Promise<RegionEntry[]> {
  let failure: CorruptImageError | undefined;
  for (let i = 0; i < 2; i++) {
    const at = REGION_TABLE_OFFSETS[i];
    const buf = await source.readUpTo(at, TABLE_SIZE);
    const where = { file, field: 'region table', offset: at };
    if (buf.length < TABLE_SIZE) {
      failure ??= new TruncatedImageError(`region table ${i + 1} lies past the end of the file`, where);
      continue;
    }
    const h = REGION_TABLE_HEADER.parse(buf, { file, base: at });
    if (h.signature !== 'regi' || crc32c(buf, CHECKSUM_AT) !== h.checksum || h.entryCount > MAX_REGION_ENTRIES) {
      failure ??= new CorruptImageError(`region table ${i + 1} is damaged (signature, CRC-32C or entry count ${h.entryCount})`, where);
      warnings.push(`region table ${i + 1} (offset ${at}) is damaged; the other copy is used`);
      continue;
    }
    const entries: RegionEntry[] = [];
    for (let e = 0; e < h.entryCount; e++) entries.push(REGION_ENTRY.parse(buf, { file, base: at }, REGION_TABLE_HEADER.size + e * REGION_ENTRY.size));
    return entries;
  }
  throw failure!;
}

function findRegion(entries: RegionEntry[], guid: Uint8Array, name: string, file: string, fileSize: number): RegionEntry {
  const e = entries.find((x) => uuidEqual(x.guid, guid));
  const where = { file, field: `${name} region`, offset: REGION_TABLE_OFFSETS[0] };
  if (!e) throw new CorruptImageError(`the region table has no ${name} region`, where);
  if (e.fileOffset % ALIGNMENT !== 0 || e.fileOffset < ALIGNMENT || e.length === 0 || e.length % ALIGNMENT !== 0) {
    throw new CorruptImageError(`${name} region (${e.length} bytes at ${e.fileOffset}) is not 1 MiB aligned`, where);
  }
  if (e.fileOffset + e.length > fileSize) {
    throw new TruncatedImageError(`${name} region (${e.length} bytes at ${e.fileOffset}) lies past the end of the ${fileSize}-byte file`, where);
  }
  return e;
}

export async function readVhdxImage(source: ByteSource, file: string): Promise<{ image: VhdxImage; source: ByteSource }> {
  if (!source.seekable || source.size === undefined) {
    throw new UnsupportedFeatureError('a VHDX cannot be read from a pipe (its metadata may lie anywhere); save it to a file first', { file });
  }
  const warnings: string[] = [];
  const idBytes = await source.readUpTo(0, FILE_ID.size);
  const id = FILE_ID.parse(idBytes, { file });
  if (id.signature !== FILE_SIGNATURE) throw new CorruptImageError(`not a VHDX image: signature is ${JSON.stringify(id.signature)}`, { file, field: 'signature', offset: 0 });
  const creator = utf16.decode(id.creator).replace(/\0.*$/s, '');

  const { header, index } = await currentHeader(source, file, warnings);
  const headerOffset = HEADER_OFFSETS[index];
  const log = await readLog(source, header, headerOffset, file, source.size);
  const replayed = ReplayedSource.wrap(source, log);
  if (log) warnings.push(`the log holds ${log.entries} pending entr${log.entries === 1 ? 'y' : 'ies'} (sequence ${log.headSequence}); read as if replayed, the file is not changed`);
  const fileSize = replayed.size!;

  const regions = await regionTable(replayed, file, warnings);
  for (const r of regions) {
    if (r.flags & REGION_REQUIRED && !uuidEqual(r.guid, REGION_BAT) && !uuidEqual(r.guid, REGION_METADATA)) {
      throw new UnsupportedFeatureError(`the region table names a required region ${formatUuid(r.guid, 'guid')} this reader does not know`, { file, field: 'region table', offset: REGION_TABLE_OFFSETS[0] });
    }
  }
  const bat = findRegion(regions, REGION_BAT, 'BAT', file, fileSize);
  const metadata = findRegion(regions, REGION_METADATA, 'metadata', file, fileSize);
  const items = await metadataItems(replayed, metadata, file);
  const item = async (guid: Uint8Array, name: string, size: number | undefined, required: boolean): Promise<Uint8Array | undefined> => {
    const e = items.find((x) => uuidEqual(x.itemId, guid));
    if (!e) {
      if (required) throw new CorruptImageError(`the metadata region has no ${name} item`, { file, field: name, offset: metadata.fileOffset });
      return undefined;
    }
    const where = { file, field: name, offset: metadata.fileOffset + e.offset };
    if (size !== undefined && e.length < size) throw new CorruptImageError(`metadata item ${name} is ${e.length} bytes, expected ${size}`, where);
    limit(e.length, MAX_METADATA_ITEM, where, 'metadata item too large');
    if (e.offset < TABLE_SIZE || e.offset + e.length > metadata.length) throw new CorruptImageError(`metadata item ${name} (${e.length} bytes at ${e.offset}) lies outside the metadata region`, where);
    return replayed.read(metadata.fileOffset + e.offset, e.length);
  };
  for (const e of items) {
    const known = [ITEM_FILE_PARAMETERS, ITEM_VIRTUAL_DISK_SIZE, ITEM_PAGE83, ITEM_LOGICAL_SECTOR_SIZE, ITEM_PHYSICAL_SECTOR_SIZE, ITEM_PARENT_LOCATOR].some((g) => uuidEqual(g, e.itemId));
    if (!known && e.flags & METADATA_IS_REQUIRED) {
      throw new UnsupportedFeatureError(`required metadata item ${formatUuid(e.itemId, 'guid')} is not supported`, { file, field: 'metadata', offset: metadata.fileOffset });
    }
  }
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const paramBytes = (await item(ITEM_FILE_PARAMETERS, 'file parameters', 8, true))!;
  const params = FILE_PARAMETERS.parse(paramBytes);
  const paramsAt = { file, field: 'block size', offset: metadata.fileOffset };
  inRange(params.blockSize, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, paramsAt);
  if (!isPowerOfTwo(params.blockSize)) throw new CorruptImageError(`block size ${params.blockSize} is not a power of two`, paramsAt);
  const sizeBytes = (await item(ITEM_VIRTUAL_DISK_SIZE, 'virtual disk size', 8, true))!;
  const big = dv(sizeBytes).getBigUint64(0, true);
  const sizeAt = { file, field: 'virtual disk size', offset: metadata.fileOffset };
  if (big > BigInt(MAX_VIRTUAL_SIZE)) throw new CorruptImageError(`virtual disk size ${big} is larger than 64 TiB`, sizeAt);
  const virtualSize = Number(big);
  const sector = async (guid: Uint8Array, name: string) => {
    const b = (await item(guid, name, 4, true))!;
    const v = dv(b).getUint32(0, true);
    if (v !== 512 && v !== 4096) throw new CorruptImageError(`${name} is ${v}, expected 512 or 4096`, { file, field: name, offset: metadata.fileOffset });
    return v;
  };
  const logicalSectorSize = await sector(ITEM_LOGICAL_SECTOR_SIZE, 'logical sector size');
  const physicalSectorSize = await sector(ITEM_PHYSICAL_SECTOR_SIZE, 'physical sector size');
  if (virtualSize % logicalSectorSize !== 0) throw new CorruptImageError(`virtual disk size ${virtualSize} is not a multiple of the ${logicalSectorSize}-byte logical sector`, sizeAt);
  const page83 = (await item(ITEM_PAGE83, 'page 83 data', 16, true))!.slice(0, 16);
  const hasParent = (params.flags & PARAM_HAS_PARENT) !== 0;
  let parentLocator: ParentLocator | undefined;
  if (hasParent) {
    const pl = await item(ITEM_PARENT_LOCATOR, 'parent locator', 20, true);
    parentLocator = parseParentLocator(pl!, file, metadata.fileOffset);
  }
  const ratio = chunkRatio(logicalSectorSize, params.blockSize);
  const entries = batEntries(virtualSize, params.blockSize, logicalSectorSize, hasParent);
  if (entries * 8 > bat.length) {
    throw new CorruptImageError(`the BAT region (${bat.length} bytes) is too small for ${entries} entries`, { file, field: 'BAT region', offset: REGION_TABLE_OFFSETS[0] });
  }
  const leaveBlocksAllocated = (params.flags & PARAM_LEAVE_BLOCKS_ALLOCATED) !== 0;
  const image: VhdxImage = {
    fileSize,
    creator,
    header,
    headerIndex: index,
    headerOffset,
    bat,
    metadata,
    blockSize: params.blockSize,
    leaveBlocksAllocated,
    hasParent,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    page83,
    parentLocator,
    chunkRatio: ratio,
    batEntries: entries,
    subformat: hasParent ? 'differencing' : leaveBlocksAllocated ? 'fixed' : 'dynamic',
    log,
    warnings,
  };
  return { image, source: replayed };
}

async function metadataItems(source: ByteSource, region: RegionEntry, file: string): Promise<MetadataEntry[]> {
  const buf = await source.read(region.fileOffset, TABLE_SIZE);
  const h = METADATA_TABLE_HEADER.parse(buf, { file, base: region.fileOffset });
  const where = { file, field: 'metadata table', offset: region.fileOffset };
  if (h.signature !== METADATA_SIGNATURE) throw new CorruptImageError(`metadata table signature is ${JSON.stringify(h.signature)}`, where);
  limit(h.entryCount, MAX_METADATA_ENTRIES, where, 'too many metadata entries');
  const out: MetadataEntry[] = [];
  for (let i = 0; i < h.entryCount; i++) out.push(METADATA_ENTRY.parse(buf, { file, base: region.fileOffset }, METADATA_TABLE_HEADER.size + i * METADATA_ENTRY.size));
  return out;
}
