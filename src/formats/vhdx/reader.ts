/**
 * Reading VHDX through MappedReader (MS-VHDX 2.5): each payload block's BAT entry decides —
 * FULLY_PRESENT data is in the file, PARTIALLY_PRESENT data is where the chunk's sector bitmap has
 * a bit set, ZERO reads zeros, and NOT_PRESENT/UNDEFINED/UNMAPPED have nothing here (the parent
 * answers in a differencing disk; zeros otherwise, as qemu reads them).
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import { MappedReader, type Mapping } from '../shared/mapped-reader.js';
import { formatUuid } from '../shared/uuid.js';
import type { FormatInfo, ImageReader, OpenContext } from '../types.js';
import { Bat } from './bat.js';
import { readVhdxImage, type VhdxImage } from './image.js';
import { PayloadState, SB_BLOCK_PRESENT, bitmapIndex, payloadIndex } from './layout.js';
import { openVhdxParent } from './parent.js';

/** Per-block slices of sector bitmaps kept (each at most 64 KiB: 256 MiB / 512 bits). */
const BITMAP_CACHE = 32;

export class VhdxReader extends MappedReader {
  readonly format = 'vhdx';
  readonly dataWriteGuid: Uint8Array;
  private readonly bat: Bat;
  private readonly bitmaps = new LruCache<number, Uint8Array>(BITMAP_CACHE);
  private readonly sectorsPerBlock: number;

  constructor(
    source: ByteSource,
    readonly image: VhdxImage,
    private readonly file: string,
    private readonly path: string | undefined,
    parent?: ImageReader,
    private readonly parentPath?: string,
    private readonly parentWritten?: string,
  ) {
    super(source, image.virtualSize, parent);
    this.bat = new Bat(source, image.bat, image.batEntries, file);
    this.dataWriteGuid = image.header.dataWriteGuid;
    this.sectorsPerBlock = image.blockSize / image.logicalSectorSize;
  }

  protected async map(offset: number, maxLength: number): Promise<Mapping> {
    const img = this.image;
    const bs = img.blockSize;
    const block = Math.floor(offset / bs);
    const inBlock = offset - block * bs;
    const length = Math.min(maxLength, bs - inBlock);
    const index = payloadIndex(block, img.chunkRatio);
    const e = await this.bat.entry(index);
    const absent: Mapping = { length, kind: img.hasParent ? 'unallocated' : 'zero' };
    switch (e.state) {
      case PayloadState.zero:
        return { length, kind: 'zero' };
      case PayloadState.notPresent:
      case PayloadState.undefined:
      case PayloadState.unmapped:
      case PayloadState.unmappedV095:
        return absent;
      case PayloadState.fullyPresent:
        return { length, kind: 'data', hostOffset: this.blockData(index, e.fileOffset, block) + inBlock };
      case PayloadState.partiallyPresent: {
        const host = this.blockData(index, e.fileOffset, block);
        const bits = await this.bitmapOf(block);
        const lss = img.logicalSectorSize;
        const first = Math.floor(inBlock / lss);
        const set = (s: number) => (bits[s >>> 3] >>> (s & 7)) & 1;
        const v = set(first);
        let s = first + 1;
        const last = Math.ceil((inBlock + length) / lss);
        while (s < last && set(s) === v) s++;
        const n = Math.min(length, s * lss - inBlock);
        return v ? { length: n, kind: 'data', hostOffset: host + inBlock } : { ...absent, length: n };
      }
      default:
        throw new CorruptImageError(`BAT entry ${index} (block ${block}) has the undefined state ${e.state}`, { file: this.file, field: 'BAT', offset: this.bat.entryOffset(index) });
    }
  }

  /** The block's file offset, checked to lie after the headers and inside the file. */
  private blockData(index: number, fileOffset: number, block: number): number {
    const needed = Math.min(this.image.blockSize, this.virtualSize - block * this.image.blockSize);
    const where = { file: this.file, field: 'BAT', offset: this.bat.entryOffset(index) };
    if (fileOffset < 1024 * 1024) throw new CorruptImageError(`BAT entry ${index} (block ${block}) points at ${fileOffset}, inside the headers`, where);
    if (fileOffset + needed > this.image.fileSize) {
      throw new TruncatedImageError(`block ${block} (data at ${fileOffset}) extends past the end of the ${this.image.fileSize}-byte file`, where);
    }
    return fileOffset;
  }

  /** This block's bits of its chunk's sector bitmap (2.5.1.2). */
  private bitmapOf(block: number): Promise<Uint8Array> {
    return this.bitmaps.get(block, async () => {
      const img = this.image;
      const chunk = Math.floor(block / img.chunkRatio);
      const index = bitmapIndex(chunk, img.chunkRatio);
      const where = { file: this.file, field: 'BAT', offset: this.bat.entryOffset(index) };
      if (index >= img.batEntries) throw new CorruptImageError(`block ${block} is partially present but its chunk has no sector bitmap entry`, where);
      const sb = await this.bat.entry(index);
      if (sb.state !== SB_BLOCK_PRESENT) throw new CorruptImageError(`block ${block} is partially present but its sector bitmap block is not (state ${sb.state})`, where);
      const bytes = this.sectorsPerBlock / 8;
      const at = sb.fileOffset + (block % img.chunkRatio) * bytes;
      if (sb.fileOffset < 1024 * 1024 || at + bytes > img.fileSize) throw new TruncatedImageError(`sector bitmap of block ${block} (at ${at}) lies outside the file`, where);
      return this.source.read(at, bytes);
    });
  }

  info(): FormatInfo {
    const img = this.image;
    const h = img.header;
    const specific: Record<string, unknown> = {
      'block-size': img.blockSize,
      'logical-sector-size': img.logicalSectorSize,
      'physical-sector-size': img.physicalSectorSize,
      'leave-blocks-allocated': img.leaveBlocksAllocated,
      'has-parent': img.hasParent,
      'page83-id': formatUuid(img.page83, 'guid'),
      'file-write-guid': formatUuid(h.fileWriteGuid, 'guid'),
      'data-write-guid': formatUuid(h.dataWriteGuid, 'guid'),
      'log-guid': formatUuid(h.logGuid, 'guid'),
      'log-offset': h.logOffset,
      'log-length': h.logLength,
      'log-pending': img.log !== undefined,
      'header-sequence': h.sequenceNumber.toString(),
      'current-header': img.headerIndex + 1,
      'bat-offset': img.bat.fileOffset,
      'bat-entries': img.batEntries,
      'chunk-ratio': img.chunkRatio,
      'metadata-offset': img.metadata.fileOffset,
      creator: img.creator,
    };
    if (img.parentLocator) specific['parent-locator'] = Object.fromEntries(img.parentLocator.entries);
    const info: FormatInfo = { format: 'vhdx', subformat: img.subformat, virtualSize: this.virtualSize, clusterSize: img.blockSize, dirty: false, formatSpecific: specific };
    if (this.parentWritten !== undefined) {
      info.backingFile = this.parentWritten;
      if (this.parentPath) info.backingFileFull = this.parentPath;
      info.backingFormat = 'vhdx';
    }
    if (img.warnings.length) info.warnings = [...img.warnings];
    return info;
  }

  files(): string[] {
    const own = this.path ? [this.path] : [];
    return this.backing ? [...own, ...this.backing.files()] : own;
  }
}

export async function openVhdx(source: ByteSource, ctx: OpenContext): Promise<VhdxReader> {
  const { image, source: replayed } = await readVhdxImage(source, ctx.file);
  if (image.hasParent && image.parentLocator && ctx.openBacking) {
    const parent = await openVhdxParent(image.parentLocator, ctx, image.metadata.fileOffset);
    try {
      if (parent.reader.virtualSize < image.virtualSize) image.warnings.push(`the parent (${parent.reader.virtualSize} bytes) is smaller than this disk; the rest reads as zeros`);
      return new VhdxReader(replayed, image, ctx.file, ctx.path, parent.reader, parent.path, parent.written);
    } catch (e) {
      await parent.reader.close();
      throw e;
    }
  }
  return new VhdxReader(replayed, image, ctx.file, ctx.path);
}
