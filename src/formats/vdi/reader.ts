/**
 * Reading static and dynamic VDIs through MappedReader: each virtual block is looked up in the
 * block map; free (never written) and zero (discarded) blocks read as zeros, as in qemu and in
 * VirtualBox for images without a parent.
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { MappedReader, type Mapping } from '../shared/mapped-reader.js';
import { textUntilNul } from '../shared/text.js';
import { formatUuid } from '../shared/uuid.js';
import type { FormatInfo, OpenContext } from '../types.js';
import { readVdiImage, type VdiImage } from './image.js';
import { isAllocated } from './layout.js';

export class VdiReader extends MappedReader {
  readonly format = 'vdi';

  constructor(
    source: ByteSource,
    private readonly image: VdiImage,
    private readonly file: string,
    private readonly path: string | undefined,
    private readonly fileSize: number,
  ) {
    super(source, image.virtualSize);
  }

  protected async map(offset: number, maxLength: number): Promise<Mapping> {
    const img = this.image;
    const bs = img.blockSize;
    const block = Math.floor(offset / bs);
    const inBlock = offset - block * bs;
    // Blocks this request reaches: a run is never scanned past them.
    const lastBlock = Math.ceil((offset + maxLength) / bs);
    const entry = await img.map.at(block);
    if (!isAllocated(entry)) {
      // Free and discarded blocks both read as zeros: one answer for the whole run, so that an
      // empty disk of millions of small blocks is not mapped block by block.
      const end = await img.map.runEnd(block + 1, lastBlock, (e) => !isAllocated(e));
      return { length: Math.min(maxLength, (end - block) * bs - inBlock), kind: 'zero' };
    }
    this.checkBlock(block, entry);
    const blockData = (e: number) => img.header.offData + e * (bs + img.blockExtra) + img.blockExtra;
    // Blocks stored one after another are one read (only without an extra area between them).
    const end = img.blockExtra === 0 ? await img.map.sequenceEnd(block + 1, lastBlock, entry + 1) : block + 1;
    for (let b = block + 1; b < end; b++) this.checkBlock(b, entry + (b - block));
    return { length: Math.min(maxLength, (end - block) * bs - inBlock), kind: 'data', hostOffset: blockData(entry) + inBlock };
  }

  /** The data of `block`, stored at index `entry`, must be a block of the image inside the file. */
  private checkBlock(block: number, entry: number): void {
    const img = this.image;
    const h = img.header;
    const bs = img.blockSize;
    const mapEntryAt = img.map.offsetOf(block);
    // An index beyond the image's blocks would address data that belongs to no block (qemu check
    // reports it as "too large"); reading it would return another file region's bytes.
    if (entry >= h.blocksInImage) {
      throw new CorruptImageError(`block map entry ${block} points at block ${entry}, but the image has ${h.blocksInImage}`, {
        file: this.file,
        field: 'block map',
        offset: mapEntryAt,
      });
    }
    // Each block is preceded by block_extra bytes (VDICore.h, cbBlockExtra); qemu assumes 0.
    const blockData = h.offData + entry * (bs + img.blockExtra) + img.blockExtra;
    const needed = Math.min(bs, this.virtualSize - block * bs);
    if (blockData + needed > this.fileSize) {
      throw new TruncatedImageError(`block ${block} (data at ${blockData}) extends past the end of the ${this.fileSize}-byte file`, {
        file: this.file,
        field: 'block map',
        offset: mapEntryAt,
      });
    }
  }

  info(): FormatInfo {
    const img = this.image;
    const h = img.header;
    const specific: Record<string, unknown> = {
      'image-type': img.subformat,
      'header-version': `${h.version >>> 16}.${h.version & 0xffff}`,
      'header-size': h.headerSize,
      // Without the line feed that ends it, so that text output stays on one line.
      'file-info': img.text.replace(/\n$/, ''),
      'image-uuid': formatUuid(h.uuidImage, 'guid'),
      'modification-uuid': formatUuid(h.uuidModify, 'guid'),
      'link-uuid': formatUuid(h.uuidLinkage, 'guid'),
      'parent-modification-uuid': formatUuid(h.uuidParentModify, 'guid'),
      'disk-size': h.diskSize,
      'block-size': img.blockSize,
      'block-extra': img.blockExtra,
      'blocks-in-image': h.blocksInImage,
      'blocks-allocated': h.blocksAllocated,
      'blocks-zero': img.zeroEntries,
      'block-map-offset': h.offBlocks,
      'data-offset': h.offData,
      'image-flags': h.imageFlags,
      geometry: { cylinders: h.cylinders, heads: h.heads, sectors: h.sectors, 'sector-size': h.sectorSize },
    };
    const comment = textUntilNul(h.comment);
    if (comment) specific.comment = comment;
    if (img.lchs) {
      specific['lchs-geometry'] = { cylinders: img.lchs.cylinders, heads: img.lchs.heads, sectors: img.lchs.sectors, 'sector-size': img.lchs.sectorSize };
    }
    const info: FormatInfo = { format: 'vdi', subformat: img.subformat, virtualSize: this.virtualSize, clusterSize: img.blockSize, formatSpecific: specific };
    if (img.warnings.length) info.warnings = [...img.warnings];
    return info;
  }

  files(): string[] {
    return this.path ? [this.path] : [];
  }
}

export async function openVdi(source: ByteSource, ctx: OpenContext): Promise<VdiReader> {
  const image = await readVdiImage(source, ctx.file);
  // VirtualBox and qemu give each allocated block its own slot of the data area. More allocated
  // entries than the file has slots means a truncated file, or entries that share blocks (a block
  // map that is a hole names block 0 hundreds of millions of times, one extent each): refused for
  // reading, and left to check to report.
  const slots = image.dataSlots;
  if (image.allocatedEntries > slots) {
    const past = image.firstPastFile;
    if (past >= 0) {
      throw new TruncatedImageError(`block ${past} lies past the end of the ${source.size}-byte file (the data area holds ${slots} blocks)`, {
        file: ctx.file,
        field: 'block map',
        offset: image.map.offsetOf(past),
      });
    }
    throw new CorruptImageError(`the block map has ${image.allocatedEntries} allocated entries, but the data area holds at most ${slots} blocks: entries share blocks (run check)`, {
      file: ctx.file,
      field: 'block map',
      offset: image.header.offBlocks,
    });
  }
  return new VdiReader(source, image, ctx.file, ctx.path, source.size!);
}
