/**
 * BAT lookups through a window of cached pages: a 64 TiB disk with 1 MiB blocks has a 512 MiB
 * BAT, which is never loaded whole. Each entry is classified once here (state, file offset).
 */
import { CorruptImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import { MiB, type RegionEntry } from './layout.js';

/** Entries per cached page (64 KiB of BAT) and pages kept (4 MiB): enough for any sequential pass. */
export const BAT_PAGE_ENTRIES = 8192;
export const BAT_CACHE_PAGES = 64;

export interface BatEntry {
  state: number;
  /** File offset of the block in bytes (bits 20–63 are MiB). */
  fileOffset: number;
}

/** Splits a raw entry (two little-endian u32 halves) into state and offset. */
export function decodeBatEntry(lo: number, hi: number): BatEntry {
  return { state: lo & 7, fileOffset: (hi * 2 ** 12 + (lo >>> 20)) * MiB };
}

export class Bat {
  private readonly pages = new LruCache<number, DataView>(BAT_CACHE_PAGES);

  constructor(
    private readonly source: ByteSource,
    private readonly region: RegionEntry,
    readonly entries: number,
    private readonly file: string,
  ) {}

  async entry(index: number): Promise<BatEntry> {
    if (index >= this.entries) throw new CorruptImageError(`BAT entry ${index} is past the ${this.entries} entries`, { file: this.file, field: 'BAT', offset: this.region.fileOffset });
    const page = Math.floor(index / BAT_PAGE_ENTRIES);
    const dv = await this.pages.get(page, async () => {
      const first = page * BAT_PAGE_ENTRIES;
      const n = Math.min(BAT_PAGE_ENTRIES, this.entries - first);
      const b = await this.source.read(this.region.fileOffset + first * 8, n * 8);
      return new DataView(b.buffer, b.byteOffset, b.byteLength);
    });
    const at = (index % BAT_PAGE_ENTRIES) * 8;
    const e = decodeBatEntry(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    if (!Number.isSafeInteger(e.fileOffset)) {
      throw new CorruptImageError(`BAT entry ${index} points past 2^53`, { file: this.file, field: 'BAT', offset: this.region.fileOffset + index * 8 });
    }
    return e;
  }

  /** File offset of entry `index`, for messages. */
  entryOffset(index: number): number {
    return this.region.fileOffset + index * 8;
  }
}
