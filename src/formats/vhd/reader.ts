/**
 * Reading fixed, dynamic and differencing VHDs. The reader answers MappedReader's one question
 * ("what backs this virtual offset?"); read(), extents() and the fall-through to the parent come
 * from there.
 *
 * Sector bitmaps: in a differencing disk a clear bit sends the sector to the parent, so the bitmap
 * of every allocated block is consulted (and cached). In a dynamic disk qemu ignores the bitmap and
 * reads the whole allocated block, and so do we: writers fill new blocks with zeros, so the two
 * readings agree on real images, and reading qemu's way keeps `qemu-img convert` as the oracle.
 */
import { UnsupportedFeatureError, CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import { MappedReader, type Mapping } from '../shared/mapped-reader.js';
import { formatUuid } from '../shared/uuid.js';
import type { FormatInfo, ImageReader, OpenContext } from '../types.js';
import { parentLocators, readDynamicLayout, type DynamicLayout } from './dynamic.js';
import { readFooter, type ChosenFooter } from './footer.js';
import { MAX_SECTORS, decideVirtualSize, type SizeSource } from './geometry.js';
import { BAT_UNUSED, DYNAMIC_HEADER, FEATURE_TEMPORARY, FOOTER, FORMAT_VERSION, SECTOR, VHD_EPOCH_UNIX, diskTypeName, fourccText, type DiskTypeName, type VhdFooter } from './layout.js';
import { openParent, parentNames, type ParentName } from './parent.js';
import { sectorPresent, sectorRunEnd } from './sector-bitmap.js';

/** Bitmaps kept in memory for differencing disks: bounded in bytes, not only in count. */
const BITMAP_CACHE_BYTES = 4 * 1024 * 1024;

interface VhdParts {
  file: string;
  path?: string;
  footer: VhdFooter;
  footerAt: number;
  subformat: DiskTypeName;
  virtualSize: number;
  sizeSource: SizeSource;
  dynamic?: DynamicLayout;
  /** Parent names as found in the child (differencing disks). */
  parentNames: ParentName[];
  parent?: { reader: ImageReader; name: ParentName; path: string };
  warnings: string[];
}

export class VhdReader extends MappedReader {
  readonly format = 'vhd';
  private readonly bitmaps: LruCache<number, Uint8Array> | undefined;

  constructor(
    source: ByteSource,
    private readonly parts: VhdParts,
  ) {
    super(source, parts.virtualSize, parts.parent?.reader);
    const d = parts.dynamic;
    if (d && parts.subformat === 'differencing') {
      this.bitmaps = new LruCache(Math.max(4, Math.floor(BITMAP_CACHE_BYTES / d.bitmapSize)));
    }
  }

  /** The footer's unique id, which a differencing child records as its parent's. */
  get uniqueId(): Uint8Array {
    return this.parts.footer.uniqueId;
  }

  protected async map(offset: number, maxLength: number): Promise<Mapping> {
    const d = this.parts.dynamic;
    if (!d) return { length: maxLength, kind: 'data', hostOffset: offset };
    const bs = d.blockSize;
    const block = Math.floor(offset / bs);
    const inBlock = offset - block * bs;
    const length = Math.min(maxLength, bs - inBlock);
    const entry = await d.bat.at(block);
    const differencing = this.bitmaps !== undefined;
    if (entry === BAT_UNUSED) {
      // One answer for the whole run of unused blocks (as qemu's vpc_co_block_status): an empty
      // disk of millions of small blocks is not mapped block by block.
      const end = await d.bat.runEnd(block + 1, Math.ceil((offset + maxLength) / bs), (e) => e === BAT_UNUSED);
      return { length: Math.min(maxLength, (end - block) * bs - inBlock), kind: differencing ? 'unallocated' : 'zero' };
    }
    const dataStart = entry * SECTOR + d.bitmapSize;
    if (!differencing) return { length, kind: 'data', hostOffset: dataStart + inBlock };
    const bitmap = await this.bitmaps!.get(block, () => this.source.read(entry * SECTOR, d.bitmapSize));
    const first = Math.floor(inBlock / SECTOR);
    const end = sectorRunEnd(bitmap, first, Math.ceil((inBlock + length) / SECTOR));
    const run = Math.min(length, end * SECTOR - inBlock);
    return sectorPresent(bitmap, first) ? { length: run, kind: 'data', hostOffset: dataStart + inBlock } : { length: run, kind: 'unallocated' };
  }

  info(): FormatInfo {
    const p = this.parts;
    const f = p.footer;
    const specific: Record<string, unknown> = {
      'disk-type': p.subformat,
      'creator-application': fourccText(f.creatorApp),
      'creator-version': `${f.creatorVersion >>> 16}.${f.creatorVersion & 0xffff}`,
      'creator-host-os': fourccText(f.creatorHostOs),
      timestamp: new Date((VHD_EPOCH_UNIX + f.timestamp) * 1000).toISOString(),
      uuid: formatUuid(f.uniqueId, 'rfc'),
      'original-size': f.originalSize,
      'current-size': f.currentSize,
      geometry: { cylinders: f.cylinders, heads: f.heads, 'sectors-per-track': f.sectorsPerTrack },
      'virtual-size-from': p.sizeSource,
      'format-version': `${f.formatVersion >>> 16}.${f.formatVersion & 0xffff}`,
      temporary: (f.features & FEATURE_TEMPORARY) !== 0,
      'saved-state': f.savedState !== 0,
      'footer-offset': p.footerAt,
    };
    const d = p.dynamic;
    if (d) {
      specific['block-size'] = d.blockSize;
      specific['max-table-entries'] = d.header.maxTableEntries;
      specific['table-offset'] = d.header.tableOffset;
      specific['allocated-blocks'] = d.allocatedBlocks;
    }
    const info: FormatInfo = { format: 'vhd', subformat: p.subformat, virtualSize: this.virtualSize, formatSpecific: specific };
    if (d) info.clusterSize = d.blockSize;
    if (d && p.subformat === 'differencing') {
      specific['parent-uuid'] = formatUuid(d.header.parentUuid, 'rfc');
      specific['parent-timestamp'] = new Date((VHD_EPOCH_UNIX + d.header.parentTimestamp) * 1000).toISOString();
      specific['parent-locators'] = p.parentNames.map((n) => ({ platform: n.platform, path: n.written }));
      const shown = p.parent?.name ?? p.parentNames[0];
      if (shown) info.backingFile = shown.written;
      if (p.parent) info.backingFileFull = p.parent.path;
      info.backingFormat = 'vpc';
    }
    if (p.warnings.length) info.warnings = [...p.warnings];
    return info;
  }

  files(): string[] {
    return [...(this.parts.path ? [this.parts.path] : []), ...(this.parts.parent?.reader.files() ?? [])];
  }
}

/** What every VHD's footer settles: which footer, the disk type and the virtual size, each checked. */
export interface VhdBasics {
  chosen: ChosenFooter;
  subformat: DiskTypeName;
  virtualSize: number;
  sizeSource: SizeSource;
}

/** Reads and checks the footer of a VHD file of `size` bytes (reader and resize alike). */
export async function readVhdBasics(source: ByteSource, size: number, file: string, warnings: string[]): Promise<VhdBasics> {
  const chosen = await readFooter(source, size, file, warnings);
  const footer = chosen.footer;
  const subformat = diskTypeName(footer.diskType);
  if (!subformat) {
    throw new CorruptImageError(`disk type ${footer.diskType} is not fixed (2), dynamic (3) or differencing (4)`, {
      file,
      field: 'diskType',
      offset: chosen.at + FOOTER.offsetOf('diskType'),
    });
  }
  if (footer.formatVersion !== FORMAT_VERSION) {
    warnings.push(`file format version is 0x${footer.formatVersion.toString(16)}, not 1.0`);
  }
  const decided = decideVirtualSize(footer);
  if (decided.sectors > MAX_SECTORS) {
    throw new UnsupportedFeatureError(`virtual size of ${decided.sectors} sectors exceeds the VHD maximum of 2040 GiB`, {
      file,
      field: decided.source === 'chs' ? 'cylinders' : 'currentSize',
      offset: chosen.at + FOOTER.offsetOf(decided.source === 'chs' ? 'cylinders' : 'currentSize'),
    });
  }
  const virtualSize = decided.sectors * SECTOR;
  // A fixed disk's data is the file up to the footer; a footer claiming more is a truncated image.
  if (subformat === 'fixed' && virtualSize > chosen.endAt) {
    throw new TruncatedImageError(`fixed VHD of ${virtualSize} bytes needs ${virtualSize} bytes of data before its footer, but the footer is at ${chosen.endAt}`, {
      file,
      field: 'currentSize',
      offset: chosen.at + FOOTER.offsetOf('currentSize'),
    });
  }
  return { chosen, subformat, virtualSize, sizeSource: decided.source };
}

export async function openVhd(source: ByteSource, ctx: OpenContext): Promise<VhdReader> {
  const file = ctx.file;
  if (!source.seekable || source.size === undefined) {
    throw new UnsupportedFeatureError('a VHD cannot be read from a pipe (its footer is at the end); save it to a file first', { file });
  }
  const size = source.size;
  const warnings: string[] = [];
  const { chosen, subformat, virtualSize, sizeSource } = await readVhdBasics(source, size, file, warnings);
  const footer = chosen.footer;
  const parts: VhdParts = { file, path: ctx.path, footer, footerAt: chosen.at, subformat, virtualSize, sizeSource, parentNames: [], warnings };
  if (subformat === 'fixed') return new VhdReader(source, parts);

  const dynamic = await readDynamicLayout(source, size, file, footer, chosen.at, virtualSize);
  parts.dynamic = dynamic;
  if (subformat === 'differencing') {
    const locatorAt = dynamic.headerOffset + 576;
    parts.parentNames = await parentNames(source, size, parentLocators(dynamic, file), dynamic.header.parentName, locatorAt, warnings);
    if (ctx.openBacking) {
      parts.parent = await openParent(parts.parentNames, dynamic.header.parentUuid, dynamic.headerOffset + DYNAMIC_HEADER.offsetOf('parentUuid'), ctx);
    }
  }
  return new VhdReader(source, parts);
}
