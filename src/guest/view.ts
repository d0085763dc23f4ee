/**
 * Views: each layer of the guest wing (device, partition, logical volume) hands the next a byte
 * range of the layer below that is itself random-access, so every layer works on every image
 * format with no copy (docs/ARCHITECTURE.md, "The guest wing").
 */
import { TruncatedImageError, UsageError } from '../errors.js';
import { LruCache } from '../formats/shared/lru.js';
import type { ImageReader } from '../formats/types.js';

export interface BlockView {
  /** Name for messages: /dev/sda1, /dev/vg/lv, or the image path. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or a typed error when the range leaves the view. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Refuses a read outside [0, size): a table entry pointing past its device is corruption, not a short read. */
export function checkRange(view: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new UsageError(`invalid read of ${length} bytes at ${offset}`, { file: view.name, offset });
  }
  if (offset + length > view.size) {
    throw new TruncatedImageError(`read of ${length} bytes at ${offset} leaves the device (${view.size} bytes)`, {
      file: view.name,
      offset,
    });
  }
}

/** Metadata reads are small and repeat (superblocks, table sectors); 4 KiB blocks cover every sector size we meet. */
export const CACHE_BLOCK = 4096;
/** 512 blocks = 2 MiB per disk: enough for every table and superblock of a guest, bounded whatever the disk. */
export const CACHE_BLOCKS = 512;
/** Reads above this go straight to the image: they are file data, which would only evict metadata. */
export const CACHED_READ_MAX = 64 * 1024;

/** A whole image as a device: counts the bytes it asks of the image and caches metadata blocks. */
export class DiskView implements BlockView {
  readonly size: number;
  /** Bytes read from the image reader (the measure of "reads a few hundred KiB, not the disk"). */
  bytesRead = 0;
  private readonly cache = new LruCache<number, Uint8Array>(CACHE_BLOCKS);

  constructor(
    readonly reader: ImageReader,
    readonly name: string,
  ) {
    this.size = reader.virtualSize;
  }

  private async fetch(offset: number, length: number): Promise<Uint8Array> {
    this.bytesRead += length;
    return this.reader.read(offset, length);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length > CACHED_READ_MAX) return this.fetch(offset, length);
    const out = new Uint8Array(length);
    const first = Math.floor(offset / CACHE_BLOCK);
    const last = Math.floor((offset + length - 1) / CACHE_BLOCK);
    for (let b = first; b <= last && length > 0; b++) {
      const start = b * CACHE_BLOCK;
      const block = await this.cache.get(b, () => this.fetch(start, Math.min(CACHE_BLOCK, this.size - start)));
      const from = Math.max(offset, start);
      const to = Math.min(offset + length, start + block.length);
      out.set(block.subarray(from - start, to - start), from - offset);
    }
    return out;
  }
}

/** [start, start+size) of `parent`, itself a view: partitions, PV data areas, LV segments. */
export class RangeView implements BlockView {
  constructor(
    readonly parent: BlockView,
    readonly start: number,
    readonly size: number,
    readonly name: string,
  ) {
    if (start < 0 || size < 0 || start + size > parent.size) {
      throw new TruncatedImageError(`${name} (${size} bytes at ${start}) lies past the end of ${parent.name} (${parent.size} bytes)`, {
        file: parent.name,
        offset: start,
      });
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.parent.read(this.start + offset, length);
  }
}

/** A view over a buffer (tests, fuzzing, probes of bytes already in memory). */
export class BufferView implements BlockView {
  readonly size: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly name = 'buffer',
  ) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.slice(offset, offset + length);
  }
}
