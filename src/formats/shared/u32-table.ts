/**
 * A table of 32-bit entries stored in a file (VMDK grain directory, VDI block map, VHD BAT), read
 * lazily in windows through an LRU. A hostile header may state a table of hundreds of millions of
 * entries in a small sparse file; loading it whole would cost gigabytes (one Uint32Array per copy,
 * per extent), so only a bounded number of windows is ever held: memory does not grow with the
 * table. Small tables — every real image — are one window, read once.
 *
 * Whole-table walks (open-time validation, check, info counts) stream through the file in chunks
 * with one reused buffer and yield to the event loop, so that a signal ends them promptly.
 */
import type { ByteSource } from '../../stream/source.js';
import { within } from './bounds.js';
import { LruCache } from './lru.js';
import { Yielder } from './yield.js';

/** Tables up to this many entries (4 MiB) are one window: a 2 TiB VMDK of 64 KiB grains has 64 Ki GD entries. */
export const WHOLE_TABLE_ENTRIES = 1024 * 1024;
/** Window of a larger table (256 KiB of entries). */
export const WINDOW_ENTRIES = 64 * 1024;
/** Windows kept per table: 4 MiB, whatever the table's size. */
export const CACHED_WINDOWS = 16;
/** Entries per chunk of a streamed walk (4 MiB reads: few round trips to the I/O threads). */
const WALK_ENTRIES = 1024 * 1024;

/**
 * True when every entry equals the first. One native compare of the bytes against themselves shifted
 * by an entry: a per-entry JavaScript loop over the hundreds of millions of entries of a sparse
 * hostile table costs seconds, memcmp a fraction of that.
 */
export function isUniform(entries: Uint32Array): boolean {
  if (entries.length < 2) return true;
  const b = Buffer.from(entries.buffer, entries.byteOffset, entries.byteLength);
  return b.compare(b, 4, b.length, 0, b.length - 4) === 0;
}

const isByteSymmetric = (v: number): boolean => (v & 0xff) === v >>> 24 && ((v >>> 8) & 0xff) === ((v >>> 16) & 0xff);

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface U32TableSpec {
  source: ByteSource;
  /** File offset of entry 0. */
  offset: number;
  entries: number;
  littleEndian: boolean;
  /** Name of the table in errors (the field of the header that locates it). */
  field: string;
  /** File name in errors, when not the source's. */
  file?: string;
}

export interface TableWindow {
  /** Index of entries[0] in the table. */
  start: number;
  entries: Uint32Array;
}

export class U32Table {
  readonly length: number;
  readonly offset: number;
  private readonly windowEntries: number;
  private readonly windows: LruCache<number, Uint32Array>;

  constructor(private readonly spec: U32TableSpec) {
    const { source, offset, entries, field } = spec;
    within(offset, entries * 4, source.size ?? Number.MAX_SAFE_INTEGER, { file: spec.file ?? source.name, field, offset });
    this.length = entries;
    this.offset = offset;
    this.windowEntries = entries <= WHOLE_TABLE_ENTRIES ? Math.max(1, entries) : WINDOW_ENTRIES;
    this.windows = new LruCache(CACHED_WINDOWS);
  }

  /** Reads entries [start, start + n) into `into` (host order). */
  private async readInto(start: number, n: number, into: Uint32Array): Promise<Uint32Array> {
    const out = into.subarray(0, n);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, n * 4);
    await this.spec.source.read(this.offset + start * 4, n * 4, bytes);
    // A run of one byte-symmetric value (0, 0xFFFFFFFF: the holes and empty tables of hostile images)
    // reads the same either way: spare the swap.
    if (this.spec.littleEndian !== HOST_LITTLE_ENDIAN && !(isUniform(out) && isByteSymmetric(out[0]))) {
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).swap32();
    }
    return out;
  }

  /** The window holding entry `i` (which must be below length). */
  async window(i: number): Promise<TableWindow> {
    const w = Math.floor(i / this.windowEntries);
    const start = w * this.windowEntries;
    const entries = await this.windows.get(w, () => {
      const n = Math.min(this.windowEntries, this.length - start);
      return this.readInto(start, n, new Uint32Array(n));
    });
    return { start, entries };
  }

  async at(i: number): Promise<number> {
    const { start, entries } = await this.window(i);
    return entries[i - start];
  }

  /** File offset of entry `i`, for errors. */
  offsetOf(i: number): number {
    return this.offset + i * 4;
  }

  /**
   * The first index in [from, to) whose entry does not satisfy `keep`, or `to`. Lets a reader answer
   * a long run of empty entries in one mapping instead of one per entry.
   */
  async runEnd(from: number, to: number, keep: (entry: number) => boolean): Promise<number> {
    if (from >= to) return to;
    // The window at hand (cached: lookups near each other share it) ...
    const { start, entries } = await this.window(from);
    const stop = Math.min(to, start + entries.length);
    const part = entries.subarray(from - start, stop - start);
    if (!(isUniform(part) && keep(part[0]))) {
      for (let i = from; i < stop; i++) if (!keep(entries[i - start])) return i;
    }
    if (stop >= to) return to;
    // ... and a run that goes on past it is streamed in large reads, not window by window.
    let end = to;
    await this.walk(
      (at, chunk) => {
        if (isUniform(chunk) && keep(chunk[0])) return false;
        for (let i = 0; i < chunk.length; i++) {
          if (!keep(chunk[i])) {
            end = at + i;
            return true;
          }
        }
        return false;
      },
      stop,
      to,
    );
    return end;
  }

  /** The first index in [from, to) whose entry is not `first + (index - from)`, or `to`: blocks stored one after another. */
  async sequenceEnd(from: number, to: number, first: number): Promise<number> {
    let i = from;
    while (i < to) {
      const { start, entries } = await this.window(i);
      const stop = Math.min(to, start + entries.length);
      for (; i < stop; i++) if (entries[i - start] !== first + (i - from)) return i;
    }
    return to;
  }

  /**
   * Streams entries [from, to) in order, in chunks of two reused buffers (the next chunk is read
   * while the current one is visited; not cached: a walk must not evict the windows lookups use),
   * yielding to the event loop between chunks. A visitor that returns true ends the walk.
   */
  async walk(visit: (start: number, entries: Uint32Array) => boolean | void | Promise<boolean | void>, from = 0, to = this.length): Promise<void> {
    const y = new Yielder();
    const size = Math.min(WALK_ENTRIES, Math.max(1, to - from));
    const bufs = [new Uint32Array(size), new Uint32Array(size)];
    const fetch = (start: number, k: number) => {
      const p = this.readInto(start, Math.min(size, to - start), bufs[k % 2]);
      // Settled by the loop below; until then a rejection must not count as unhandled.
      p.catch(() => {});
      return p;
    };
    let next = from < to ? fetch(from, 0) : undefined;
    for (let start = from, k = 0; next; k++) {
      const entries = await next;
      const after = start + entries.length;
      next = after < to ? fetch(after, k + 1) : undefined;
      if ((await visit(start, entries)) === true) {
        // Let the read under way settle before its buffer is dropped.
        await next?.catch(() => {});
        return;
      }
      start = after;
      if (y.overdue()) await y.pause();
    }
  }

  /** The whole table in memory, for code that rewrites it (resize); bounded by the caller's limit. */
  async readAll(): Promise<Uint32Array> {
    const all = new Uint32Array(this.length);
    await this.walk((start, entries) => all.set(entries, start));
    return all;
  }
}
