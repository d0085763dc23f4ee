/**
 * Persistent dirty bitmaps (spec "Bitmaps extension", "Bitmap directory"): listed by `info` and
 * counted by `check` (their directory, tables and data clusters hold references like any other
 * metadata). guestkit does not interpret bitmap contents: converting copies the disk, not its
 * change tracking, as qemu-img convert does without --bitmaps.
 */
import { CorruptImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { TableCursor } from './cursor.js';
import { BITMAP_DIR_ENTRY, BME_FLAG_AUTO, BME_FLAG_IN_USE } from './layout.js';

export interface BitmapRecord {
  name: string;
  granularityBits: number;
  flags: number;
  type: number;
  tableOffset: bigint;
  tableSize: number;
}

/** Same bound as QEMU's BME_MAX_TABLE_SIZE: a bitmap table of at most 2^27 entries. */
const MAX_TABLE_ENTRIES = 0x8000000;
const MAX_NAME = 1023;
const MAX_GRANULARITY_BITS = 31;
const MIN_GRANULARITY_BITS = 9;

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Reads the bitmap directory, validating each entry as QEMU's bitmap_list_load does. */
export async function readBitmapDirectory(
  source: ByteSource,
  ext: { nbBitmaps: number; directorySize: number; directoryOffset: number },
  file: string,
): Promise<BitmapRecord[]> {
  const cursor = new TableCursor(source, source.size ?? Number.MAX_SAFE_INTEGER);
  const out: BitmapRecord[] = [];
  const end = ext.directoryOffset + ext.directorySize;
  let pos = ext.directoryOffset;
  while (pos < end) {
    if (out.length >= ext.nbBitmaps) {
      throw new CorruptImageError(`bitmap directory holds more entries than the ${ext.nbBitmaps} the header declares`, { file, field: 'bitmap directory', offset: pos });
    }
    if (end - pos < BITMAP_DIR_ENTRY.size) throw new CorruptImageError('bitmap directory entry crosses the end of the directory', { file, field: 'bitmap directory', offset: pos });
    const e = BITMAP_DIR_ENTRY.parse(await cursor.read(pos, BITMAP_DIR_ENTRY.size), { file, base: pos });
    const size = Math.ceil((BITMAP_DIR_ENTRY.size + e.extraDataSize + e.nameSize) / 8) * 8;
    if (e.extraDataSize > end - pos || size > end - pos) {
      throw new CorruptImageError('bitmap directory entry crosses the end of the directory', { file, field: 'bitmap directory', offset: pos });
    }
    if (e.nameSize === 0 || e.nameSize > MAX_NAME) throw new CorruptImageError(`bitmap name size ${e.nameSize} is invalid`, { file, field: 'bitmap name_size', offset: pos + BITMAP_DIR_ENTRY.offsetOf('nameSize') });
    if (e.granularityBits < MIN_GRANULARITY_BITS || e.granularityBits > MAX_GRANULARITY_BITS) {
      throw new CorruptImageError(`bitmap granularity 2^${e.granularityBits} is out of range`, { file, field: 'bitmap granularity_bits', offset: pos + BITMAP_DIR_ENTRY.offsetOf('granularityBits') });
    }
    if (e.bitmapTableSize > MAX_TABLE_ENTRIES) throw new CorruptImageError(`bitmap table of ${e.bitmapTableSize} entries is too large`, { file, field: 'bitmap_table_size', offset: pos + BITMAP_DIR_ENTRY.offsetOf('bitmapTableSize') });
    const nameBytes = await cursor.read(pos + BITMAP_DIR_ENTRY.size + e.extraDataSize, e.nameSize);
    const nul = nameBytes.indexOf(0);
    const name = utf8.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul));
    out.push({ name, granularityBits: e.granularityBits, flags: e.flags, type: e.type, tableOffset: e.bitmapTableOffset, tableSize: e.bitmapTableSize });
    pos += size;
  }
  if (out.length !== ext.nbBitmaps) {
    throw new CorruptImageError(`bitmap directory holds ${out.length} entries, the header declares ${ext.nbBitmaps}`, { file, field: 'nb_bitmaps' });
  }
  return out;
}

/** qemu-img info's view of a bitmap. */
export function bitmapInfo(b: BitmapRecord): { flags: string[]; name: string; granularity: number } {
  const flags: string[] = [];
  if (b.flags & BME_FLAG_IN_USE) flags.push('in-use');
  if (b.flags & BME_FLAG_AUTO) flags.push('auto');
  return { flags, name: b.name, granularity: 2 ** b.granularityBits };
}
