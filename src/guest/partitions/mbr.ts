/**
 * MBR (DOS) partition tables with extended/logical chains, read as Linux's block/partitions/msdos.c
 * reads them: primaries numbered by slot 1-4, logical partitions from 5 in chain order.
 */
import { CorruptImageError, LimitExceededError } from '../../errors.js';
import { partitionName } from '../devices.js';
import type { BlockView } from '../view.js';
import { overlapping, type Partition } from './table.js';
import { MBR_EXTENDED, MBR_GPT_PROTECTIVE, mbrTypeName } from './types.js';

export const MBR_SIGNATURE_OFFSET = 510;
export const MBR_ENTRIES_OFFSET = 446;
export const MBR_DISK_SIGNATURE_OFFSET = 440;
const ENTRY_SIZE = 16;
/** Linux stops at 256 partitions per disk (DISK_MAX_PARTS); a longer EBR chain is a loop or garbage. */
export const MAX_LOGICAL = 252;

export interface MbrEntry {
  slot: number;
  bootFlag: number;
  type: number;
  startLba: number;
  sectors: number;
}

export function hasMbrSignature(sector: Uint8Array): boolean {
  return sector.length >= 512 && sector[MBR_SIGNATURE_OFFSET] === 0x55 && sector[MBR_SIGNATURE_OFFSET + 1] === 0xaa;
}

export function mbrEntries(sector: Uint8Array): MbrEntry[] {
  const dv = new DataView(sector.buffer, sector.byteOffset, 512);
  return [0, 1, 2, 3].map((slot) => {
    const at = MBR_ENTRIES_OFFSET + slot * ENTRY_SIZE;
    return { slot, bootFlag: sector[at], type: sector[at + 4], startLba: dv.getUint32(at + 8, true), sectors: dv.getUint32(at + 12, true) };
  });
}

/**
 * Whether sector 0 holds a partition table at all: the signature, and boot flags 0x00 or 0x80 in
 * every slot (msdos.c's check, which tells a table from the boot sector of an unpartitioned FAT or
 * NTFS disk, whose code bytes fill those slots).
 */
export function looksLikeMbr(sector: Uint8Array): boolean {
  if (!hasMbrSignature(sector)) return false;
  const entries = mbrEntries(sector);
  if (entries.some((e) => e.bootFlag !== 0 && e.bootFlag !== 0x80)) return false;
  return entries.some((e) => e.type !== 0 && e.sectors !== 0);
}

export const diskSignature = (sector: Uint8Array): number =>
  new DataView(sector.buffer, sector.byteOffset, 512).getUint32(MBR_DISK_SIGNATURE_OFFSET, true);

export const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

export interface MbrTable {
  diskSignature: number;
  partitions: Partition[];
  /** Slots of type 0xEE: the MBR protects (or, with other entries, is a hybrid of) a GPT. */
  protective: boolean;
}

export async function readMbr(disk: BlockView, sectorSize = 512): Promise<MbrTable> {
  const sector0 = await disk.read(0, 512);
  if (!looksLikeMbr(sector0)) throw new CorruptImageError('no MBR partition table', { file: disk.name, field: 'MBR signature', offset: MBR_SIGNATURE_OFFSET });
  const sig = diskSignature(sector0);
  const diskSectors = Math.floor(disk.size / sectorSize);
  const partuuid = (n: number): string => `${hex8(sig)}-${n.toString(16).padStart(2, '0')}`;
  const parts: Partition[] = [];
  const entries = mbrEntries(sector0);
  const protective = entries.some((e) => e.type === MBR_GPT_PROTECTIVE);
  const extended: Partition[] = [];

  for (const e of entries) {
    if (e.type === 0 || e.sectors === 0) continue;
    const where = { file: disk.name, field: `partition ${e.slot + 1} entry`, offset: MBR_ENTRIES_OFFSET + e.slot * ENTRY_SIZE };
    // A protective entry covers the whole disk (or 2^32-1 sectors of a bigger one): not a real partition.
    if (e.type !== MBR_GPT_PROTECTIVE && e.startLba + e.sectors > diskSectors) {
      throw new CorruptImageError(`partition ${e.slot + 1} (sectors ${e.startLba}+${e.sectors}) ends past the end of the disk (${diskSectors} sectors)`, where);
    }
    if (e.startLba === 0) throw new CorruptImageError(`partition ${e.slot + 1} starts at sector 0, over the partition table`, where);
    const p: Partition = {
      number: e.slot + 1,
      device: partitionName(disk.name, e.slot + 1),
      start: e.startLba * sectorSize,
      size: e.sectors * sectorSize,
      mbrType: e.type,
      typeName: mbrTypeName(e.type),
      partuuid: partuuid(e.slot + 1),
      bootable: e.bootFlag === 0x80,
    };
    if (MBR_EXTENDED.has(e.type)) {
      p.extended = true;
      extended.push(p);
    }
    parts.push(p);
  }
  const primaries = parts.filter((p) => !p.extended && p.mbrType !== MBR_GPT_PROTECTIVE);
  const clash = overlapping([...primaries, ...extended]);
  if (clash) throw overlapError(disk.name, clash);

  let next = 5;
  for (const ext of extended) {
    const logical = await readLogical(disk, ext, sectorSize, next, partuuid);
    next += logical.length;
    parts.push(...logical);
  }
  return { diskSignature: sig, partitions: parts, protective };
}

function overlapError(file: string, [a, b]: [Partition, Partition]): CorruptImageError {
  return new CorruptImageError(`partitions ${a.number} and ${b.number} overlap (${b.device} starts at byte ${b.start}, inside ${a.device})`, {
    file,
    field: `partition ${b.number}`,
    offset: b.start,
  });
}

/**
 * Walks the EBR chain of one extended partition. Each EBR holds the logical partition relative to
 * itself and the next EBR relative to the start of the extended partition; every EBR must lie
 * inside the extended partition, and one seen twice is a loop.
 */
async function readLogical(
  disk: BlockView,
  ext: Partition,
  sectorSize: number,
  firstNumber: number,
  partuuid: (n: number) => string,
): Promise<Partition[]> {
  const extStart = ext.start / sectorSize;
  const extEnd = extStart + ext.size / sectorSize;
  const seen = new Set<number>();
  const out: Partition[] = [];
  let ebr = extStart;
  while (true) {
    const where = { file: disk.name, field: 'EBR', offset: ebr * sectorSize };
    if (seen.has(ebr)) throw new CorruptImageError(`the extended partition's EBR chain loops back to sector ${ebr}`, where);
    if (seen.size >= MAX_LOGICAL) throw new LimitExceededError(`more than ${MAX_LOGICAL} logical partitions`, where);
    seen.add(ebr);
    const sector = await disk.read(ebr * sectorSize, 512);
    if (!hasMbrSignature(sector)) {
      // An empty extended partition (no logical yet) has a blank first EBR: Linux stops there too.
      if (ebr === extStart) return out;
      throw new CorruptImageError(`EBR at sector ${ebr} has no 0x55AA signature`, { ...where, offset: ebr * sectorSize + MBR_SIGNATURE_OFFSET });
    }
    const [first, link] = mbrEntries(sector);
    if (first.type !== 0 && first.sectors !== 0) {
      const start = ebr + first.startLba;
      if (first.startLba === 0 || start + first.sectors > extEnd) {
        throw new CorruptImageError(`logical partition at sectors ${start}+${first.sectors} lies outside its extended partition (sectors ${extStart}-${extEnd - 1})`, {
          ...where,
          field: 'EBR logical entry',
          offset: ebr * sectorSize + MBR_ENTRIES_OFFSET,
        });
      }
      const n = firstNumber + out.length;
      const p: Partition = {
        number: n,
        device: partitionName(disk.name, n),
        start: start * sectorSize,
        size: first.sectors * sectorSize,
        mbrType: first.type,
        typeName: mbrTypeName(first.type),
        partuuid: partuuid(n),
        bootable: first.bootFlag === 0x80,
        logical: true,
      };
      const clash = overlapping([...out, p]);
      if (clash) throw overlapError(disk.name, clash);
      out.push(p);
    }
    if (link.type === 0 || !MBR_EXTENDED.has(link.type)) return out;
    const nextEbr = extStart + link.startLba;
    if (link.startLba === 0 || nextEbr >= extEnd) {
      throw new CorruptImageError(`next EBR at sector ${nextEbr} lies outside the extended partition (sectors ${extStart}-${extEnd - 1})`, {
        ...where,
        field: 'EBR link entry',
        offset: ebr * sectorSize + MBR_ENTRIES_OFFSET + ENTRY_SIZE,
      });
    }
    ebr = nextEbr;
  }
}
