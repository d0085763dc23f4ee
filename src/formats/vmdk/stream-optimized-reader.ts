/**
 * Reading a streamOptimized VMDK in one forward pass from a non-seekable source (a pipe, a file
 * inside an OVA), where the grain directory only comes at the end (docs/FORMATS.md §3.5).
 *
 * The grains are self-describing: every grain marker carries its LBA, so the stream itself is the
 * map. Markers are read forward from the header's overHead; compressed grains wait in a queue until
 * a read asks for them; GT, GD and footer metadata is skipped (the footer is checked).
 *
 * A pipe that closes early must not pass for a stream's end: see stream-optimized-end.ts for what ends a
 * stream. Reading the last byte of the disk (read() or extents()) reads on to that end.
 *
 * Memory stays bounded: read() consumes the queue in increasing order and drops what lies behind;
 * extents() looks ahead at most LOOKAHEAD_BYTES of compressed grains. Past that point it cannot
 * know where the holes are without holding more data, so it reports the rest of the disk as data;
 * read() then serves the holes as zeros, which the copy engine's zero scan turns back into holes.
 */
import { CorruptImageError, IoError, TruncatedImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import { textUntilNul } from '../shared/text.js';
import type { Extent, FormatInfo, ImageReader, OpenContext } from '../types.js';
import { parseDescriptor, type Descriptor } from './descriptor.js';
import { inflateGrain, inflateGrainInto } from './grain-codec.js';
import { diskInfo } from './info.js';
import {
  GD_AT_END,
  GRAIN_CACHE_ENTRIES,
  GRAIN_MARKER,
  MARKER_EOS,
  MARKER_FOOTER,
  MAX_DESCRIPTOR_BYTES,
  MAX_GD_ENTRIES,
  METADATA_MARKER,
  SECTOR,
  SPARSE_HEADER,
  SPARSE_MAGIC_LE,
  tableSectors,
} from './layout.js';
import { checkSparseHeader, type SparseGeometry } from './sparse.js';
import { lastListedGrain } from './stream-optimized-end.js';

/** Compressed bytes extents() may hold while looking for the next hole. */
export const LOOKAHEAD_BYTES = 32 * 1024 * 1024;
/** Metadata (GT, GD, footer) never spans more sectors than the largest grain directory. */
const MAX_METADATA_SECTORS = tableSectors(MAX_GD_ENTRIES);

interface QueuedGrain {
  /** Grain index in the disk. */
  grain: number;
  /** zlib data (a view into its own buffer). */
  data: Uint8Array;
  /** Stream offset of its marker, for errors. */
  at: number;
  /** Bytes it occupies in the queue accounting. */
  cost: number;
}

export async function openStreamReader(source: ByteSource, ctx: OpenContext): Promise<ImageReader> {
  const h = SPARSE_HEADER.parse(await source.read(0, SECTOR), { file: ctx.file });
  const g = checkSparseHeader(h, ctx.file);
  if (!g.compressed || !g.markers) {
    throw new UnsupportedFeatureError(
      'only a streamOptimized VMDK (compressed grains with markers) can be read from a pipe; save this sparse VMDK to a file first',
      { file: ctx.file, field: 'flags', offset: SPARSE_HEADER.offsetOf('flags') },
    );
  }
  let descriptor: Descriptor | undefined;
  let readTo = SECTOR;
  if (h.descriptorOffset > 0 && h.descriptorSize > 0) {
    const len = Math.min(h.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES);
    readTo = h.descriptorOffset * SECTOR + len;
    const bytes = await source.readUpTo(h.descriptorOffset * SECTOR, len);
    // Grains follow the descriptor: a stream that ends inside it was cut short.
    if (bytes.length < len) throw new TruncatedImageError('stream ends inside its descriptor', { file: ctx.file, field: 'descriptor', offset: h.descriptorOffset * SECTOR + bytes.length });
    const text = textUntilNul(bytes);
    if (text.trim() !== '') descriptor = parseDescriptor(text, { file: ctx.file, base: h.descriptorOffset * SECTOR, embedded: true });
  }
  if (descriptor?.parentFileNameHint !== undefined) {
    throw new UnsupportedFeatureError('a delta VMDK read from a pipe cannot locate its parent', { file: ctx.file, field: 'parentFileNameHint' });
  }
  return new VmdkStreamReader(source, g, descriptor, ctx.file, await lastListedGrain(source, g, readTo));
}

export class VmdkStreamReader implements ImageReader {
  readonly format = 'vmdk';
  readonly virtualSize: number;
  private readonly grainBytes: number;
  private readonly queue: QueuedGrain[] = [];
  private head = 0;
  private buffered = 0;
  /** Stream offset of the next marker. */
  private next: number;
  /** Every grain with a lower index has been seen. */
  private known = 0;
  private ended = false;
  private footerSeen = false;
  /** Grains below this index were dropped: asking for them again means going backwards. */
  private lowWater = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly sector = new Uint8Array(SECTOR);
  private readonly decoded = new LruCache<number, Uint8Array>(GRAIN_CACHE_ENTRIES);
  private readonly warnings: string[] = [];

  constructor(
    private readonly source: ByteSource,
    private readonly g: SparseGeometry,
    private readonly descriptor: Descriptor | undefined,
    private readonly file: string,
    /** Where the header region's tables put the last grain (stream-optimized-end.ts); undefined: the stream needs its end marker. */
    private readonly lastGrainAt?: number,
  ) {
    this.virtualSize = g.capacitySectors * SECTOR;
    this.grainBytes = g.grainSectors * SECTOR;
    this.next = g.header.overHead * SECTOR;
    if (this.next < SECTOR) throw new CorruptImageError('overHead must leave room for the header', { file, field: 'overHead', offset: SPARSE_HEADER.offsetOf('overHead') });
  }

  /** Runs `fn` after every earlier call: pulls from the pipe happen one at a time, in call order. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => {});
    return run;
  }

  private backwards(offset: number): IoError {
    return new IoError(`cannot read backwards in a pipe (offset ${offset}, already past ${this.lowWater * this.grainBytes}); use a file`, {
      file: this.file,
      offset,
    });
  }

  /** Reads the next marker and whatever follows it. */
  private async pull(): Promise<void> {
    const at = this.next;
    const sec = await this.source.readUpTo(at, SECTOR, this.sector);
    if (sec.length === 0) {
      // QEMU's streams may end after the last grain their tables list, without an end-of-stream marker.
      if (this.lastGrainAt !== undefined && at > this.lastGrainAt) return this.end();
      throw new TruncatedImageError(
        this.lastGrainAt !== undefined
          ? `stream ends at ${at} bytes, before the grain its tables place at ${this.lastGrainAt}`
          : `stream ends at ${at} bytes without an end-of-stream marker`,
        { file: this.file, field: 'end-of-stream marker', offset: at },
      );
    }
    if (sec.length < SECTOR) {
      // Past the last grain its tables list, a QEMU stream is complete: what follows is padding.
      if (this.lastGrainAt !== undefined && at > this.lastGrainAt) return this.end();
      throw new TruncatedImageError('stream ends inside a marker', { file: this.file, field: 'marker', offset: at });
    }
    const gm = GRAIN_MARKER.parse(sec, { file: this.file, base: at });
    if (gm.size > 0) return this.takeGrain(at, gm.lba, gm.size);
    const m = METADATA_MARKER.parse(sec, { file: this.file, base: at });
    if (m.type === MARKER_EOS && m.numSectors === 0n) {
      if (this.g.header.gdOffset === GD_AT_END && !this.footerSeen) {
        throw new TruncatedImageError('stream ends without the footer its header announces (gdOffset at the end)', { file: this.file, field: 'footer', offset: at });
      }
      return this.end();
    }
    if (m.numSectors > BigInt(MAX_METADATA_SECTORS)) {
      throw new CorruptImageError(`metadata marker of type ${m.type} claims ${m.numSectors} sectors`, { file: this.file, field: 'metadata marker', offset: at });
    }
    const n = Number(m.numSectors);
    if (m.type === MARKER_FOOTER) {
      await this.checkFooter(at + SECTOR);
      this.footerSeen = true;
    }
    // GT, GD and progress markers: what they say, the grain markers already told us.
    this.next = at + (1 + n) * SECTOR;
  }

  /**
   * Reads on to the stream's end once the disk's last byte has been asked for, so a stream cut
   * after its last grain is refused too. Only metadata can follow: a later grain would be out of order.
   */
  private async pullToEnd(): Promise<void> {
    while (!this.ended) await this.pull();
  }

  private end(): void {
    this.ended = true;
    this.known = Number.POSITIVE_INFINITY;
  }

  private async takeGrain(at: number, lba: bigint, size: number): Promise<void> {
    const where = { file: this.file, offset: at };
    const G = this.grainBytes;
    if (lba % BigInt(this.g.grainSectors) !== 0n || lba >= BigInt(this.g.capacitySectors)) {
      throw new CorruptImageError(`grain marker LBA ${lba} is not a grain inside the disk`, { ...where, field: 'grain marker lba' });
    }
    if (size > 2 * G) throw new CorruptImageError(`grain marker size ${size} is larger than two grains`, { ...where, field: 'grain marker size' });
    const grain = Number(lba) / this.g.grainSectors;
    if (grain < this.known) {
      throw new UnsupportedFeatureError(`grain ${grain} comes after grain ${this.known - 1} in the stream; an out-of-order stream can only be read from a file`, {
        ...where,
        field: 'grain marker lba',
      });
    }
    const total = Math.ceil((GRAIN_MARKER.size + size) / SECTOR) * SECTOR;
    const buf = new Uint8Array(total);
    buf.set(this.sector);
    if (total > SECTOR) await this.source.read(at + SECTOR, total - SECTOR, buf.subarray(SECTOR));
    this.queue.push({ grain, data: buf.subarray(GRAIN_MARKER.size, GRAIN_MARKER.size + size), at, cost: total });
    this.buffered += total;
    this.known = grain + 1;
    this.next = at + total;
  }

  private async checkFooter(at: number): Promise<void> {
    const buf = await this.source.readUpTo(at, SECTOR);
    if (buf.length < SECTOR) throw new TruncatedImageError('stream ends inside its footer', { file: this.file, field: 'footer', offset: at + buf.length });
    const f = SPARSE_HEADER.parse(buf, { file: this.file, base: at });
    if (f.magic !== SPARSE_MAGIC_LE || f.capacity !== this.g.header.capacity || f.grainSize !== this.g.header.grainSize) {
      throw new CorruptImageError('stream footer does not repeat the header', { file: this.file, field: 'footer', offset: at });
    }
  }

  /** Drops queued grains below `grain` (they will not be asked for again). */
  private dropBelow(grain: number): void {
    while (this.head < this.queue.length && this.queue[this.head].grain < grain) {
      this.buffered -= this.queue[this.head].cost;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (grain > this.lowWater) this.lowWater = grain;
  }

  /** First queued grain with index ≥ `grain`. */
  private queuedFrom(grain: number): QueuedGrain | undefined {
    let lo = this.head;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.queue[mid].grain < grain) lo = mid + 1;
      else hi = mid;
    }
    return this.queue[lo];
  }

  private inflate(q: QueuedGrain): Promise<Uint8Array> {
    return this.decoded.get(q.grain, async () => {
      const out = inflateGrain(q.data, this.grainBytes, this.grainWhere(q));
      const need = Math.min(this.grainBytes, this.virtualSize - q.grain * this.grainBytes);
      if (out.length < need) throw this.shortGrain(out.length, need, q);
      return out;
    });
  }

  private grainWhere(q: QueuedGrain) {
    return { file: this.file, field: 'compressed grain', offset: q.at };
  }

  private shortGrain(got: number, need: number, q: QueuedGrain): CorruptImageError {
    return new CorruptImageError(`compressed grain inflates to ${got} bytes, expected ${need}`, this.grainWhere(q));
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.virtualSize) {
      throw new UsageError(`read of ${length} bytes at ${offset} is outside the virtual disk (${this.virtualSize} bytes)`, { offset });
    }
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    if (length === 0) return out;
    const G = this.grainBytes;
    const first = Math.floor(offset / G);
    const last = Math.floor((offset + length - 1) / G);
    const grains = await this.locked(async () => {
      if (first < this.lowWater) throw this.backwards(offset);
      while (!this.ended && this.known <= last) await this.pull();
      this.dropBelow(first);
      if (offset + length === this.virtualSize) await this.pullToEnd();
      const picked: QueuedGrain[] = [];
      for (let i = this.head; i < this.queue.length && this.queue[i].grain <= last; i++) picked.push(this.queue[i]);
      return picked;
    });
    // Zeros between grains, then each grain decoded (synchronously: see grain-codec.ts).
    let pos = offset;
    for (const q of grains) {
      const start = Math.max(offset, q.grain * G);
      if (start > pos) out.fill(0, pos - offset, start - offset);
      pos = Math.min(offset + length, (q.grain + 1) * G);
    }
    if (pos < offset + length) out.fill(0, pos - offset);
    await Promise.all(
      grains.map(async (q) => {
        const gStart = q.grain * G;
        const from = Math.max(offset, gStart);
        const to = Math.min(offset + length, gStart + G);
        if (from === gStart && to === gStart + G) {
          // A whole grain inflates straight into the output.
          const n = inflateGrainInto(q.data, out.subarray(from - offset, to - offset), this.grainWhere(q));
          if (n < G) throw this.shortGrain(n, G, q);
          return;
        }
        const data = await this.inflate(q);
        out.set(data.subarray(from - gStart, to - gStart), from - offset);
      }),
    );
    return out;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    const end = Math.min(to, this.virtualSize);
    const G = this.grainBytes;
    let cur: Extent | undefined;
    const emit = function* (e: Extent): Generator<Extent> {
      if (cur && cur.kind === e.kind && cur.present === e.present && cur.offset + cur.length === e.offset) {
        cur.length += e.length;
        return;
      }
      if (cur) yield cur;
      cur = e;
    };
    let pos = from;
    while (pos < end) {
      const g = Math.floor(pos / G);
      const found = await this.locked(async (): Promise<QueuedGrain | 'end' | 'full'> => {
        if (g < this.lowWater) throw this.backwards(pos);
        for (;;) {
          const q = this.queuedFrom(g);
          if (q) return q;
          if (this.ended) return 'end';
          if (this.buffered >= LOOKAHEAD_BYTES) return 'full';
          await this.pull();
        }
      });
      if (found === 'end' || (found !== 'full' && found.grain * G >= end)) {
        yield* emit({ offset: pos, length: end - pos, kind: 'zero', present: false, depth: 0 });
        break;
      }
      if (found === 'full') {
        // Past the look-ahead, holes cannot be told from data without holding more of the stream.
        if (!this.warnings.length) this.warnings.push(`allocation unknown beyond ${pos} bytes: more than ${LOOKAHEAD_BYTES} bytes of grains ahead`);
        yield* emit({ offset: pos, length: end - pos, kind: 'data', depth: 0 });
        break;
      }
      const gStart = found.grain * G;
      if (gStart > pos) {
        yield* emit({ offset: pos, length: gStart - pos, kind: 'zero', present: false, depth: 0 });
        pos = gStart;
        continue;
      }
      const e = Math.min(end, gStart + G);
      yield* emit({ offset: pos, length: e - pos, kind: 'data', depth: 0 });
      pos = e;
    }
    if (end === this.virtualSize && pos >= end) await this.locked(() => this.pullToEnd());
    if (cur) yield cur;
  }

  info(): FormatInfo {
    const extent = { format: '', virtualSize: this.virtualSize, clusterSize: this.grainBytes, compressed: true, filename: this.file };
    return diskInfo({ createType: 'streamOptimized', descriptor: this.descriptor, extents: [extent], warnings: this.warnings }, this.virtualSize, undefined);
  }

  files(): string[] {
    return [];
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
