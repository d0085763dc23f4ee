/**
 * Resizing fixed and dynamic VHDs in place (qemu-img cannot: its vpc driver has no truncate).
 *
 * The new size is rounded as `create` rounds it (geometry.ts createGeometry): up to a CHS product
 * for images sized by CHS, exact (to a sector) for images whose creator makes readers use
 * current_size — so qemu, Virtual PC and Hyper-V read back the size we report. The creator, the
 * original size, the unique id and the timestamp stay as they were.
 *
 * Fixed: the footer moves to the new end (shrinking only with --shrink). Dynamic: grows only. When
 * the BAT needs more entries than it has room for before the first data blocks, those blocks
 * (sector bitmap and data) are copied to the end of the file and their BAT entries switched first,
 * then the BAT grows, then the dynamic header, the footer and its copy at offset 0 are rewritten.
 */
import { CorruptImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import { ceilDiv, roundUp } from '../shared/bounds.js';
import { checkShrink, targetSize, withImageFile, writeZeros, copyWithin, type ImageFile } from '../shared/resize.js';
import type { ResizeOptions, ResizeResult, ResizeTarget } from '../types.js';
import { readDynamicLayout, MAX_TABLE_ENTRIES, type DynamicLayout } from './dynamic.js';
import { readVhdBasics } from './reader.js';
import { CURRENT_SIZE_CREATORS, createGeometry, type CreateGeometry } from './geometry.js';
import {
  BAT_UNUSED,
  DYNAMIC_HEADER,
  DYNAMIC_HEADER_CHECKSUM_AT,
  FOOTER,
  FOOTER_SIZE,
  SECTOR,
  sealChecksum,
  type VhdFooter,
} from './layout.js';
import { MAX_WRITE_ENTRIES } from './writer.js';

/** BAT entries are 32-bit sector numbers; 0xFFFFFFFF means "not allocated". */
const MAX_BAT_SECTOR = 0xffff_fffe;

export async function resizeVhd(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult> {
  const file = opts.ctx.file;
  return withImageFile(path, file, async (f) => {
    const size = f.source.size;
    const { chosen, subformat: type, virtualSize: oldSize } = await readVhdBasics(f.source, size, file, []);
    if (chosen.at !== size - FOOTER_SIZE) {
      throw new UnsupportedFeatureError('the footer at the end of the file is missing or damaged; convert the image to repair it before resizing', {
        file,
        field: 'footer',
        offset: chosen.endAt,
      });
    }
    const footer = chosen.footer;
    if (type === 'differencing') {
      throw new UnsupportedFeatureError('differencing VHDs are not resized: their size follows their parent', { file, field: 'diskType', offset: chosen.at + FOOTER.offsetOf('diskType') });
    }
    const requested = targetSize(target, oldSize, file);
    // Readers size this image by current_size (creator rule): keep the size exact, as create's force_size does.
    const geometry = createGeometry(requested, CURRENT_SIZE_CREATORS.includes(footer.creatorApp));
    if (!geometry) throw new UsageError(`${requested} bytes is too large for a VHD: the maximum is 2040 GiB`, { file });
    const newSize = geometry.size;
    checkShrink(newSize, oldSize, opts, 'vhd', type === 'fixed', 'a dynamic disk only grows');
    if (newSize === oldSize) return { format: 'vhd', oldSize, newSize };
    const newFooter = footerWithSize(footer, geometry);
    if (type === 'fixed') await resizeFixed(f, chosen.at, oldSize, newSize, newFooter);
    else await growDynamic(f, await readDynamicLayout(f.source, size, file, footer, chosen.at, oldSize), chosen.at, oldSize, newSize, newFooter, file);
    return { format: 'vhd', oldSize, newSize };
  });
}

/** The footer with the new current size and geometry, checksummed. */
function footerWithSize(footer: VhdFooter, g: CreateGeometry): Uint8Array {
  const buf = FOOTER.serialize({ ...footer, currentSize: g.size, cylinders: g.cylinders, heads: g.heads, sectorsPerTrack: g.sectorsPerTrack, checksum: 0 });
  return sealChecksum(buf);
}


/**
 * Fixed disk: the data is the file up to the footer. Growing writes the new footer at the new end
 * first, then zeros where the old footer was (and any bytes the old footer left past the old
 * size). The two writes cannot be one: interrupted between them, the image is the new one, but
 * with the old footer's 512 bytes showing at the old end of the disk. Shrinking writes the new
 * footer over data being cut off, then truncates: interrupted between, the image is the old one
 * with those 512 bytes of the cut-off range overwritten.
 */
async function resizeFixed(f: ImageFile, footerAt: number, oldSize: number, newSize: number, footer: Uint8Array): Promise<void> {
  await f.sink.write(newSize, footer);
  await f.sink.sync();
  if (newSize > oldSize) await writeZeros(f, oldSize, Math.min(newSize, footerAt + FOOTER_SIZE));
  await f.sink.setLength(newSize + FOOTER_SIZE);
  await f.sink.sync();
}

async function growDynamic(f: ImageFile, d: DynamicLayout, footerAt: number, oldSize: number, newSize: number, footer: Uint8Array, file: string): Promise<void> {
  const entries = d.bat.length;
  // Rewritten whole, so held whole: the entries a resize writes are bounded by MAX_WRITE_ENTRIES.
  const bat = await d.bat.readAll();
  const newEntries = ceilDiv(newSize, d.blockSize);
  if (newEntries > Math.min(MAX_WRITE_ENTRIES, MAX_TABLE_ENTRIES)) {
    throw new UsageError(`${newSize} bytes in ${d.blockSize}-byte blocks needs ${newEntries} BAT entries, more than the ${MAX_WRITE_ENTRIES} supported`, { file });
  }
  const tableOffset = d.header.tableOffset;
  const stride = d.bitmapSize + d.blockSize;
  let end = footerAt; // where the footer goes: after the last block

  if (newEntries > d.header.maxTableEntries) {
    const tableEnd = tableOffset + roundUp(newEntries * 4, SECTOR);
    const headerEnd = d.headerOffset + DYNAMIC_HEADER.size;
    if (tableOffset < FOOTER_SIZE || (tableOffset < headerEnd && d.headerOffset < tableEnd)) {
      throw new UnsupportedFeatureError(`the BAT at ${tableOffset} cannot grow to ${newEntries} entries without overlapping the footer copy or the dynamic header`, {
        file,
        field: 'tableOffset',
        offset: d.headerOffset + DYNAMIC_HEADER.offsetOf('tableOffset'),
      });
    }
    // Blocks in the way, by position: they move to the end, after the last block (the footer's place).
    const moving: number[] = [];
    for (let i = 0; i < entries; i++) {
      const e = bat[i];
      if (e === BAT_UNUSED) continue;
      const at = e * SECTOR;
      if (at + stride > footerAt) throw new CorruptImageError(`block ${i} (sector ${e}) overlaps the footer`, { file, field: 'BAT', offset: tableOffset + i * 4 });
      if (at < tableEnd && at + stride > tableOffset) moving.push(i);
    }
    moving.sort((a, b) => bat[a] - bat[b]);
    end = roundUp(Math.max(footerAt, tableEnd), SECTOR);
    if ((end + moving.length * stride) / SECTOR > MAX_BAT_SECTOR + 1) {
      throw new UnsupportedFeatureError('moved blocks would lie beyond the 2 TiB a BAT entry can address', { file, field: 'BAT' });
    }
    const oldFooter = await f.source.read(footerAt, FOOTER_SIZE);
    const moved = new Map<number, number>();
    for (const i of moving) {
      await copyWithin(f, bat[i] * SECTOR, end, stride);
      moved.set(i, end / SECTOR);
      end += stride;
    }
    if (end !== footerAt) {
      // The old footer goes under the first moved block or the grown BAT: put it at the new end
      // first, so the image is the old one, whole, until the switch (a reader would otherwise
      // need the copy at offset 0).
      await f.sink.write(end, oldFooter);
      await f.sink.sync();
    }
    if (moving.length) {
      // Each entry is one 4-byte write: the old image stays readable, block by block.
      const entry = new Uint8Array(4);
      for (const [i, sector] of moved) {
        new DataView(entry.buffer).setUint32(0, sector);
        await f.sink.write(tableOffset + i * 4, entry);
        bat[i] = sector;
      }
      await f.sink.sync();
    }
    // The new entries (and the sector padding) are unused: 0xFF, as qemu pads.
    await f.sink.write(tableOffset + entries * 4, new Uint8Array(tableEnd - tableOffset - entries * 4).fill(0xff));
    await zeroTail(f, d, oldSize);
    await f.sink.sync();
    const header = sealChecksum(DYNAMIC_HEADER.serialize({ ...d.header, maxTableEntries: newEntries, checksum: 0 }), DYNAMIC_HEADER_CHECKSUM_AT);
    await f.sink.write(d.headerOffset, header);
  } else {
    // Entries past the old size may hold anything a shrink left: they become unused.
    if (newEntries > entries) await f.sink.write(tableOffset + entries * 4, new Uint8Array((newEntries - entries) * 4).fill(0xff));
    await zeroTail(f, d, oldSize);
  }
  await f.sink.sync();
  // The switch. qemu reads the copy at offset 0, guestkit the footer at the end: interrupted
  // between the two writes, each reads a whole image, the old or the new.
  await f.sink.write(end, footer);
  await f.sink.setLength(end + FOOTER_SIZE);
  await f.sink.sync();
  await f.sink.write(0, footer);
  await f.sink.sync();
}


/**
 * The bytes of the last block past the old size become part of the disk: make sure they read as
 * zeros (writers zero-pad, but a block is not obliged to hold zeros past the virtual end).
 */
async function zeroTail(f: ImageFile, d: DynamicLayout, oldSize: number): Promise<void> {
  const inBlock = oldSize % d.blockSize;
  if (inBlock === 0) return;
  const e = await d.bat.at(Math.floor(oldSize / d.blockSize));
  if (e === BAT_UNUSED) return;
  const data = e * SECTOR + d.bitmapSize;
  await writeZeros(f, data + inBlock, data + d.blockSize);
}
