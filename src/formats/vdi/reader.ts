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
import { BLOCK_ZERO, isAllocated } from './layout.js';

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
    const length = Math.min(maxLength, bs - inBlock);
    const entry = img.map[block];
    if (!isAllocated(entry)) return { length, kind: 'zero' };
    const h = img.header;
    const mapEntryAt = h.offBlocks + block * 4;
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
    return { length, kind: 'data', hostOffset: blockData + inBlock };
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
      'blocks-zero': countEntries(img.map, BLOCK_ZERO),
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

function countEntries(map: Uint32Array, value: number): number {
  let n = 0;
  for (let i = 0; i < map.length; i++) if (map[i] === value) n++;
  return n;
}

export async function openVdi(source: ByteSource, ctx: OpenContext): Promise<VdiReader> {
  const image = await readVdiImage(source, ctx.file);
  return new VdiReader(source, image, ctx.file, ctx.path, source.size!);
}
