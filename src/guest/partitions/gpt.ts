/**
 * GUID partition tables (UEFI 2.10 §5.3). The primary header sits at LBA 1 and its backup at the
 * last LBA; each carries a CRC32 of itself and of the entry array. A damaged primary is replaced by
 * the backup, with a warning, as the kernel and sfdisk do.
 */
import { CorruptImageError, LimitExceededError } from '../../errors.js';
import { formatUuid, isNullUuid } from '../../formats/shared/uuid.js';
import { crc32 } from '../crc32.js';
import { partitionName } from '../devices.js';
import type { BlockView } from '../view.js';
import { overlapping, type Partition } from './table.js';
import { gptAttributeText, gptTypeName } from './types.js';

export const GPT_SIGNATURE = 'EFI PART';
const HEADER_MIN = 92;
/** UEFI requires at least 16 KiB of entries; tools use 128 × 128 bytes. 1 MiB allows 8192 entries and bounds what a header can make us read. */
export const MAX_ENTRY_ARRAY = 1024 * 1024;
/** Entry sizes are 128 × 2^n (UEFI); anything above a sector is not a real table. */
const MAX_ENTRY_SIZE = 4096;

export interface GptHeader {
  lba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

const guid = (b: Uint8Array): string => formatUuid(b, 'guid').toUpperCase();

function u64(dv: DataView, at: number, where: { file: string; field: string; offset: number }): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${where.field} ${v} is beyond 2^53`, where);
  return Number(v);
}

/** Parses and checks one header sector; returns a reason string instead of throwing, so the caller can try the backup. */
export function parseGptHeader(sector: Uint8Array, lba: number, file: string, sectorSize: number): GptHeader | string {
  if (new TextDecoder('latin1').decode(sector.subarray(0, 8)) !== GPT_SIGNATURE) return 'no "EFI PART" signature';
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.length);
  const headerSize = dv.getUint32(12, true);
  if (headerSize < HEADER_MIN || headerSize > sectorSize) return `header size ${headerSize} is outside ${HEADER_MIN}..${sectorSize}`;
  const copy = sector.slice(0, headerSize);
  copy.fill(0, 16, 20);
  const stored = dv.getUint32(16, true);
  const computed = crc32(copy);
  if (stored !== computed) return `header CRC32 is 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`;
  const base = lba * sectorSize;
  const at = (field: string, offset: number) => ({ file, field, offset: base + offset });
  const h: GptHeader = {
    lba: u64(dv, 24, at('my_lba', 24)),
    alternateLba: u64(dv, 32, at('alternate_lba', 32)),
    firstUsableLba: u64(dv, 40, at('first_usable_lba', 40)),
    lastUsableLba: u64(dv, 48, at('last_usable_lba', 48)),
    diskGuid: guid(sector.subarray(56, 72)),
    entriesLba: u64(dv, 72, at('partition_entry_lba', 72)),
    entryCount: dv.getUint32(80, true),
    entrySize: dv.getUint32(84, true),
    entriesCrc: dv.getUint32(88, true),
  };
  if (h.lba !== lba) return `header says it is at LBA ${h.lba}, found at LBA ${lba}`;
  if (h.entrySize < 128 || h.entrySize % 128 !== 0 || h.entrySize > MAX_ENTRY_SIZE) return `entry size ${h.entrySize} is not a multiple of 128 up to ${MAX_ENTRY_SIZE}`;
  if (h.firstUsableLba > h.lastUsableLba) return `first usable LBA ${h.firstUsableLba} is after last usable LBA ${h.lastUsableLba}`;
  return h;
}

/** Reads the header at `lba` and its entry array; a reason string when either is damaged. */
async function readAt(disk: BlockView, lba: number, sectorSize: number): Promise<{ header: GptHeader; entries: Uint8Array } | string> {
  if ((lba + 1) * sectorSize > disk.size) return `LBA ${lba} is past the end of the disk`;
  const h = parseGptHeader(await disk.read(lba * sectorSize, sectorSize), lba, disk.name, sectorSize);
  if (typeof h === 'string') return h;
  const bytes = h.entryCount * h.entrySize;
  if (bytes > MAX_ENTRY_ARRAY) {
    throw new LimitExceededError(`partition entry array of ${h.entryCount} × ${h.entrySize} bytes is larger than ${MAX_ENTRY_ARRAY}`, {
      file: disk.name,
      field: 'num_partition_entries',
      offset: lba * sectorSize + 80,
    });
  }
  if (h.entriesLba * sectorSize + bytes > disk.size) return `entry array at LBA ${h.entriesLba} runs past the end of the disk`;
  const entries = await disk.read(h.entriesLba * sectorSize, bytes);
  const crc = crc32(entries);
  if (crc !== h.entriesCrc) return `entry array CRC32 is 0x${h.entriesCrc.toString(16)}, computed 0x${crc.toString(16)}`;
  return { header: h, entries };
}

/** Whether a GPT header signature sits at LBA 1 for this sector size (how 4096-byte-sector disks are told apart). */
export async function gptSignatureAt(disk: BlockView, sectorSize: number): Promise<boolean> {
  if (2 * sectorSize > disk.size) return false;
  const b = await disk.read(sectorSize, 8);
  return new TextDecoder('latin1').decode(b) === GPT_SIGNATURE;
}

export interface GptTable {
  header: GptHeader;
  partitions: Partition[];
  warnings: string[];
}

export async function readGpt(disk: BlockView, sectorSize: number): Promise<GptTable> {
  const warnings: string[] = [];
  const lastLba = Math.floor(disk.size / sectorSize) - 1;
  let found = await readAt(disk, 1, sectorSize);
  if (typeof found === 'string') {
    const why = found;
    const backup = await readAt(disk, lastLba, sectorSize);
    if (typeof backup === 'string') {
      throw new CorruptImageError(`GPT primary header is damaged (${why}) and so is the backup (${backup})`, {
        file: disk.name,
        field: 'GPT header',
        offset: sectorSize,
      });
    }
    warnings.push(`the primary GPT header is damaged (${why}): using the backup header at LBA ${lastLba}`);
    found = backup;
  }
  const { header, entries } = found;
  const where = (i: number, field: string) => ({ file: disk.name, field: `partition entry ${i + 1} ${field}`, offset: header.entriesLba * sectorSize + i * header.entrySize });
  const dv = new DataView(entries.buffer, entries.byteOffset, entries.length);
  const parts: Partition[] = [];
  for (let i = 0; i < header.entryCount; i++) {
    const at = i * header.entrySize;
    const type = entries.subarray(at, at + 16);
    if (isNullUuid(type)) continue;
    const first = u64(dv, at + 32, where(i, 'starting_lba'));
    const last = u64(dv, at + 40, where(i, 'ending_lba'));
    if (first > last || first < header.firstUsableLba || last > header.lastUsableLba || (last + 1) * sectorSize > disk.size) {
      throw new CorruptImageError(`partition ${i + 1} (LBA ${first}-${last}) lies outside the usable LBAs ${header.firstUsableLba}-${header.lastUsableLba}`, where(i, 'LBA range'));
    }
    const attributes = dv.getBigUint64(at + 48, true);
    const nameBytes = entries.subarray(at + 56, at + Math.min(128, header.entrySize));
    let name = new TextDecoder('utf-16le').decode(nameBytes);
    const nul = name.indexOf('\0');
    if (nul >= 0) name = name.slice(0, nul);
    const typeGuid = guid(type);
    parts.push({
      number: i + 1,
      device: partitionName(disk.name, i + 1),
      start: first * sectorSize,
      size: (last - first + 1) * sectorSize,
      gptType: typeGuid,
      typeName: gptTypeName(typeGuid),
      partuuid: guid(entries.subarray(at + 16, at + 32)).toLowerCase(),
      name,
      attributes,
      attributeText: gptAttributeText(attributes),
    });
  }
  const clash = overlapping(parts);
  if (clash) {
    throw new CorruptImageError(`partitions ${clash[0].number} and ${clash[1].number} overlap`, where(clash[1].number - 1, 'LBA range'));
  }
  return { header, partitions: parts, warnings };
}
