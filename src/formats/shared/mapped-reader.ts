/**
 * The one implementation of read() and extents() for every block-mapped format (qcow2, VMDK
 * sparse/flat, VHD, VDI). A format answers a single question — "what backs the virtual range
 * starting at `offset`?" — through `map()`, and this class does the rest: contiguous host reads
 * coalesced into one, zero fill, falling through to the backing image (zeros past its end),
 * and merging runs into the extents `qemu-img map` prints.
 */
import { UsageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import type { Extent, FormatInfo, ImageReader } from '../types.js';
import { readZeroExtended } from './extended-reader.js';
import { Yielder } from './yield.js';

export interface Mapping {
  /** Bytes from the queried offset that this answer covers (> 0). */
  length: number;
  /**
   * data: stored in this image; zero: reads as zeros without consulting the backing image;
   * unallocated: this image has nothing here (the backing image answers, else zeros).
   */
  kind: 'data' | 'zero' | 'unallocated';
  /** For data stored plainly: its offset in `source` (contiguous for `length` bytes). */
  hostOffset?: number;
  /** The file holding the data when it is not the reader's own source (multi-extent VMDK). */
  source?: ByteSource;
  /** For data that must be decoded (compressed clusters): fills `into` with the bytes starting at the queried offset. */
  load?: (into: Uint8Array) => Promise<void>;
}

/** Decoded units (compressed clusters, grains) loaded at once within one read. */
const MAX_PARALLEL_LOADS = 16;

export abstract class MappedReader implements ImageReader {
  abstract readonly format: string;

  constructor(
    protected readonly source: ByteSource,
    readonly virtualSize: number,
    protected readonly backing?: ImageReader,
  ) {}

  /** What backs [offset, offset + maxLength)? Must cover at least one byte and at most maxLength. */
  protected abstract map(offset: number, maxLength: number): Promise<Mapping>;

  abstract info(): FormatInfo;
  abstract files(): string[];

  private names?: boolean;
  /** Whether the image names a backing file (or parent), opened or not. */
  protected namesBacking(): boolean {
    this.names ??= this.info().backingFile !== undefined;
    return this.names;
  }

  async close(): Promise<void> {
    await this.backing?.close();
    await this.source.close();
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.virtualSize) {
      throw new UsageError(`read of ${length} bytes at ${offset} is outside the virtual disk (${this.virtualSize} bytes)`, {
        offset,
      });
    }
  }

  private async mapChecked(offset: number, maxLength: number): Promise<Mapping> {
    const m = await this.map(offset, maxLength);
    // A mapping that does not advance would loop forever: treat it as a bug, not as data.
    if (!(m.length > 0)) throw new Error(`${this.format}: map() returned an empty run at ${offset}`);
    return m.length > maxLength ? { ...m, length: maxLength } : m;
  }


  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkRange(offset, length);
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    // One pending plain read, extended while mappings stay contiguous in the same file.
    let pending: { src: ByteSource; host: number; at: number; len: number } | undefined;
    const flush = async () => {
      if (!pending) return;
      const p = pending;
      pending = undefined;
      await p.src.read(p.host, p.len, out.subarray(p.at, p.at + p.len));
    };
    const loads: Promise<void>[] = [];
    let pos = 0;
    while (pos < length) {
      const m = await this.mapChecked(offset + pos, length - pos);
      const n = m.length;
      const view = out.subarray(pos, pos + n);
      if (m.kind === 'data' && m.load === undefined && m.hostOffset !== undefined) {
        const src = m.source ?? this.source;
        if (pending && pending.src === src && pending.host + pending.len === m.hostOffset && pending.at + pending.len === pos) {
          pending.len += n;
        } else {
          await flush();
          pending = { src, host: m.hostOffset, at: pos, len: n };
        }
      } else {
        await flush();
        if (m.kind === 'data') {
          if (!m.load) throw new Error(`${this.format}: data mapping at ${offset + pos} has neither hostOffset nor load`);
          // Decoders (inflate on the libuv pool) run side by side; their views are disjoint.
          const p = m.load(view);
          p.catch(() => {});
          loads.push(p);
          if (loads.length >= MAX_PARALLEL_LOADS) await Promise.all(loads.splice(0));
        } else if (m.kind === 'zero') view.fill(0);
        else await readZeroExtended(this.backing, offset + pos, view);
      }
      pos += n;
    }
    await flush();
    await Promise.all(loads);
    return out;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    const end = Math.min(to, this.virtualSize);
    let cur: Extent | undefined;
    const push = function* (e: Extent): Generator<Extent> {
      if (
        cur &&
        cur.kind === e.kind &&
        cur.depth === e.depth &&
        cur.present === e.present &&
        cur.offset + cur.length === e.offset &&
        (cur.hostOffset === undefined) === (e.hostOffset === undefined) &&
        (cur.hostOffset === undefined || cur.hostOffset + cur.length === e.hostOffset)
      ) {
        cur.length += e.length;
        return;
      }
      if (cur) yield cur;
      cur = { ...e };
    };
    let pos = from;
    // Mappings answered from cached tables settle at once: without a pause now and then, a map of
    // millions of runs would hold off signals (Ctrl-C) until it ends.
    const y = new Yielder();
    while (pos < end) {
      if (y.due()) await y.pause();
      const m = await this.mapChecked(pos, end - pos);
      const n = m.length;
      if (m.kind === 'data') {
        yield* push({
          offset: pos,
          length: n,
          kind: 'data',
          depth: 0,
          ...(m.hostOffset !== undefined && !m.load && !m.source ? { hostOffset: m.hostOffset } : {}),
        });
      } else if (m.kind === 'zero') {
        yield* push({ offset: pos, length: n, kind: 'zero', depth: 0 });
      } else if (this.backing) {
        const bEnd = Math.min(pos + n, this.backing.virtualSize);
        if (bEnd > pos) {
          for await (const e of this.backing.extents(pos, bEnd)) yield* push({ ...e, depth: e.depth + 1 });
        }
        // Past the backing image's end nothing is consulted: zeros, reported at this layer as qemu-img map does.
        if (bEnd < pos + n) yield* push({ offset: Math.max(pos, bEnd), length: pos + n - Math.max(pos, bEnd), kind: 'zero', present: false, depth: 0 });
      } else if (this.namesBacking()) {
        // The image defers to a backing file that was not opened: its content is not known here.
        yield* push({ offset: pos, length: n, kind: 'unallocated', depth: 0 });
      } else {
        yield* push({ offset: pos, length: n, kind: 'zero', present: false, depth: 0 });
      }
      pos += n;
    }
    if (cur) yield cur;
  }
}
