/**
 * L2 tables: loading through a bounded cache, and reading entries as 32-bit words.
 *
 * A table is one cluster. Tables that lie wholly past the end of the file read as zeros (QEMU's
 * file layer returns zeros there) and share one empty table instead of allocating; a table that
 * straddles EOF is zero-filled. The cache holds at most ~4 MiB of tables whatever the image size.
 */
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import type { Geometry } from './layout.js';

/** Bytes of L2 tables kept in memory by one reader. A 64 KiB table maps 512 MiB. */
const CACHE_BYTES = 4 * 1024 * 1024;

export class L2Tables {
  private readonly cache: LruCache<number, DataView>;
  private readonly empty: DataView;

  constructor(
    private readonly source: ByteSource,
    private readonly fileSize: number,
    private readonly g: Geometry,
  ) {
    this.cache = new LruCache(Math.max(2, Math.floor(CACHE_BYTES / g.clusterSize)));
    this.empty = new DataView(new ArrayBuffer(g.clusterSize));
  }

  /** The table at `offset` (cluster aligned, checked by the caller). */
  get(offset: number): Promise<DataView> {
    if (offset >= this.fileSize) return Promise.resolve(this.empty);
    return this.cache.get(offset, async () => {
      const buf = new Uint8Array(this.g.clusterSize);
      const avail = Math.min(buf.length, this.fileSize - offset);
      await this.source.read(offset, avail, buf.subarray(0, avail));
      return new DataView(buf.buffer);
    });
  }
}

/** High word of entry `i` (descriptor bits 32–63). */
export const entryHi = (t: DataView, i: number, g: Geometry): number => t.getUint32(i * g.l2EntryBytes);
/** Low word of entry `i` (descriptor bits 0–31). */
export const entryLo = (t: DataView, i: number, g: Geometry): number => t.getUint32(i * g.l2EntryBytes + 4);
/** Extended L2: zero-subcluster bits (bitmap bits 32–63). */
export const bitmapZero = (t: DataView, i: number): number => t.getUint32(i * 16 + 8);
/** Extended L2: allocated-subcluster bits (bitmap bits 0–31). */
export const bitmapAlloc = (t: DataView, i: number): number => t.getUint32(i * 16 + 12);
