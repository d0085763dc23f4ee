/**
 * The grain directory → grain table walk shared by hosted sparse (KDMV) and ESX COWD extents
 * (docs/FORMATS.md §3.4, §3.6): grain = sector / grainSize; GD index = grain / GTEs per GT; the GT
 * entry is the sector of the grain (or of its marker, in a compressed extent).
 *
 * Each GT entry is classified once (unallocated, zeroed, allocated); runs of equal entries are
 * answered in one mapping so that map/convert do not walk a 16 GiB empty disk grain by grain.
 */
import { CorruptImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { noteCheckMessage } from '../shared/check-log.js';
import { LruCache } from '../shared/lru.js';
import type { Mapping } from '../shared/mapped-reader.js';
import { isUniform, type U32Table } from '../shared/u32-table.js';
import type { ExtentInfo, ExtentReader } from './extent.js';
import { inflateGrain, inflateGrainInto, zlibBound } from './grain-codec.js';
import { GRAIN_CACHE_ENTRIES, GRAIN_MARKER, GT_CACHE_ENTRIES, GTE_UNALLOCATED, GTE_ZEROED, SECTOR } from './layout.js';

export interface GrainTableConfig {
  source: ByteSource;
  /** Virtual bytes the extent covers. */
  length: number;
  grainSectors: number;
  gtEntries: number;
  /**
   * Grain directory (sector numbers of grain tables), read in windows: a hostile capacity states
   * up to 32 Mi entries (128 MiB) per copy, per extent. `gdOffset` is where it is, for errors.
   */
  gd: U32Table;
  gdOffset: number;
  /** The redundant directory, used for a grain table whose primary copy is damaged. */
  redundantGd?: U32Table;
  zeroedGrains: boolean;
  compressed: boolean;
  markers: boolean;
  /** Descriptor type shown by info ('' for a file opened directly). */
  format: string;
  warnings: string[];
  /** Why the primary directory was set aside at open, when it was (a corruption for check). */
  damage?: string;
}

/** What check found in one extent: exact counts, and messages (capped). */
export interface ExtentCheck {
  corruptions: number;
  checkErrors: number;
  messages: string[];
}

type GrainKind = 'unallocated' | 'zeroed' | 'allocated';

/** Compressed grains answered by one mapping, and so fetched by one read (2 MiB of 64 KiB grains). */
const MAX_PARALLEL_GRAINS = 32;
/** Size of the recycled read buffers: such a run of grains stored, with their markers. */
const READ_BUFFER_BYTES = MAX_PARALLEL_GRAINS * (64 * 1024 + SECTOR) + 64 * 1024;

export class GrainTableExtent implements ExtentReader {
  readonly source: ByteSource;
  readonly length: number;
  readonly warnings: string[];
  private readonly grainBytes: number;
  private readonly gtSpan: number;
  private readonly fileSize: number;
  private readonly gts: LruCache<number, Uint32Array>;
  private readonly grains = new LruCache<number, Uint8Array>(GRAIN_CACHE_ENTRIES);
  private redundantNoted = false;
  /** Recycled read buffers (as many as reads run at once). */
  private readonly spare: Uint8Array[] = [];

  constructor(private readonly c: GrainTableConfig) {
    this.source = c.source;
    this.length = c.length;
    this.warnings = c.warnings;
    this.grainBytes = c.grainSectors * SECTOR;
    this.gtSpan = this.grainBytes * c.gtEntries;
    this.fileSize = c.source.size ?? Number.MAX_SAFE_INTEGER;
    this.gts = new LruCache(GT_CACHE_ENTRIES);
  }

  private classify(entry: number): GrainKind {
    if (entry === GTE_UNALLOCATED) return 'unallocated';
    if (entry === GTE_ZEROED && this.c.zeroedGrains) return 'zeroed';
    return 'allocated';
  }

  /** Index of the first entry pointing past the end of the file, or -1. */
  private firstBadEntry(gt: Uint32Array): number {
    const limit = this.fileSize / SECTOR;
    for (let i = 0; i < gt.length; i++) {
      const e = gt[i];
      if (e !== GTE_UNALLOCATED && !(e === GTE_ZEROED && this.c.zeroedGrains) && e >= limit) return i;
    }
    return -1;
  }

  private async readGt(sector: number): Promise<Uint32Array> {
    const bytes = await this.c.source.read(sector * SECTOR, this.c.gtEntries * 4);
    const gt = new Uint32Array(this.c.gtEntries);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < gt.length; i++) gt[i] = dv.getUint32(i * 4, true);
    return gt;
  }

  /** Loads grain table `gdIndex`, taking the redundant copy when the primary points outside the file. */
  private loadGt(gdIndex: number, sector: number): Promise<Uint32Array> {
    return this.gts.get(gdIndex, async () => {
      const gt = await this.readGt(sector);
      if (this.firstBadEntry(gt) < 0) return gt;
      const alt = await this.c.redundantGd?.at(gdIndex);
      if (alt) {
        const rgt = await this.readGt(alt);
        if (this.firstBadEntry(rgt) < 0) {
          if (!this.redundantNoted) {
            this.warnings.push(`grain table ${gdIndex} is damaged; using its redundant copy`);
            this.redundantNoted = true;
          }
          return rgt;
        }
      }
      // Keep the primary: only the damaged entries fail, when a read reaches them.
      return gt;
    });
  }

  async lookup(offset: number, maxLength: number): Promise<Mapping> {
    const G = this.grainBytes;
    const gdIndex = Math.floor(offset / this.gtSpan);
    const gdEntries = this.c.gd.length;
    if (gdIndex >= gdEntries) {
      throw new CorruptImageError(`offset ${offset} lies beyond the grain directory (${gdEntries} entries)`, {
        file: this.c.source.name,
        field: 'grain directory',
        offset: this.c.gdOffset,
      });
    }
    const gtSector = await this.c.gd.at(gdIndex);
    if (gtSector === 0) {
      // A run of absent grain tables is one answer: a huge empty directory is not mapped table by table.
      const last = Math.min(gdEntries, Math.ceil((offset + maxLength) / this.gtSpan));
      const end = await this.c.gd.runEnd(gdIndex + 1, last, (e) => e === 0);
      return { kind: 'unallocated', length: Math.min(maxLength, end * this.gtSpan - offset) };
    }
    const gt = await this.loadGt(gdIndex, gtSector);
    const grain = Math.floor(offset / G);
    const inGrain = offset - grain * G;
    let i = grain - gdIndex * this.c.gtEntries;
    const entry = gt[i];
    const kind = this.classify(entry);

    if (kind !== 'allocated') {
      // Extend over following entries of the same kind in this table.
      let run = G - inGrain;
      while (run < maxLength && ++i < gt.length && this.classify(gt[i]) === kind) run += G;
      return { kind: kind === 'zeroed' ? 'zero' : 'unallocated', length: Math.min(maxLength, run) };
    }
    if (entry * SECTOR >= this.fileSize) throw this.pastEnd(entry, gtSector, i);
    if (this.c.compressed) {
      // A run of compressed grains is answered at once, so that their markers, which follow each
      // other in the file, come in one read rather than one read per grain.
      const first = i;
      let run = G - inGrain;
      while (run < maxLength && i + 1 < gt.length && i + 1 - first < MAX_PARALLEL_GRAINS && this.classify(gt[i + 1]) === 'allocated') {
        i++;
        run += G;
      }
      const length = Math.min(maxLength, run);
      const base = grain - first;
      return {
        kind: 'data',
        length,
        load: async (into) => {
          const pieces: Array<{ k: number; from: number; n: number; at: number }> = [];
          for (let k = first, at = 0; at < into.length; k++) {
            const from = k === first ? inGrain : 0;
            const n = Math.min(G - from, into.length - at);
            if (gt[k] * SECTOR >= this.fileSize) throw this.pastEnd(gt[k], gtSector, k);
            pieces.push({ k, from, n, at });
            at += n;
          }
          // Whole grains inflate straight into `into`; a grain read in part goes through the cache.
          const whole = pieces.map((p) => p.from === 0 && p.n === G);
          const decoded = this.decodeRun(
            gtSector,
            gt,
            pieces.map((p, j) => ({ k: p.k, into: whole[j] ? into.subarray(p.at, p.at + G) : undefined })),
            base,
          );
          await Promise.all(
            pieces.map(async (p, j) => {
              const data = await decoded[j];
              if (!whole[j]) into.set(data.subarray(p.from, p.from + p.n), p.at);
            }),
          );
        },
      };
    }
    // Plain grains: extend while the next grains follow on disk, so one read covers them.
    let run = G - inGrain;
    let next = entry + this.c.grainSectors;
    while (run < maxLength && ++i < gt.length && gt[i] === next) {
      run += G;
      next += this.c.grainSectors;
    }
    return { kind: 'data', length: Math.min(maxLength, run), hostOffset: entry * SECTOR + inGrain };
  }

  private pastEnd(entry: number, gtSector: number, gtIndex: number): CorruptImageError {
    return new CorruptImageError(`grain table entry points to sector ${entry}, past the end of the file`, {
      file: this.c.source.name,
      field: 'grain table entry',
      offset: gtSector * SECTOR + gtIndex * 4,
    });
  }

  /**
   * Decodes the compressed grains at GT indexes `ks` (increasing). Grains whose markers follow
   * each other in the file — the normal case, streams are written in disk order — are fetched in
   * one read, then inflated in parallel; decoded grains are cached for reads that split them.
   */
  private decodeRun(gtSector: number, gt: Uint32Array, wanted: Array<{ k: number; into?: Uint8Array }>, base: number): Promise<Uint8Array>[] {
    const ks = wanted.map((w) => w.k);
    const G = this.grainBytes;
    const tail = GRAIN_MARKER.size + zlibBound(G);
    // Markers are sector-aligned: the next one starts at most this far after the previous.
    const step = Math.ceil(tail / SECTOR) * SECTOR;
    const out: Promise<Uint8Array>[] = [];
    let j = 0;
    while (j < ks.length) {
      // A group: entries increasing, each marker within one grain bound of the previous one.
      let end = j + 1;
      while (this.c.markers && end < ks.length && gt[ks[end]] > gt[ks[end - 1]] && (gt[ks[end]] - gt[ks[end - 1]]) * SECTOR <= step) end++;
      const start = gt[ks[j]] * SECTOR;
      const stop = Math.min(this.fileSize, gt[ks[end - 1]] * SECTOR + tail);
      // The group's bytes come into a recycled buffer, returned when its last grain is decoded
      // (inflate copies out of it): fresh megabyte buffers per read cost page faults and GC.
      let buf: Uint8Array | undefined;
      let bytes: Promise<Uint8Array> | undefined;
      let users = 0;
      const group = () => (bytes ??= this.c.source.read(start, stop - start, (buf = this.takeBuffer(stop - start)).subarray(0, stop - start)));
      for (let m = j; m < end; m++) {
        const k = ks[m];
        const entryOffset = gtSector * SECTOR + k * 4;
        const dest = wanted[m].into;
        const decode = async () => {
          if (!this.c.markers) return this.decodeGrain(gt[k], base + k, entryOffset, dest);
          users++;
          try {
            return await this.decodeMarked(await group(), gt[k] * SECTOR - start, start, base + k, entryOffset, dest);
          } finally {
            if (--users === 0 && buf) this.spare.push(buf);
          }
        };
        out.push(dest ? decode() : this.grains.get(base + k, decode));
      }
      j = end;
    }
    return out;
  }

  /** A read buffer of at least `n` bytes (unzeroed: a read fills it or fails). */
  private takeBuffer(n: number): Uint8Array {
    while (this.spare.length) {
      const b = this.spare.pop()!;
      if (b.length >= n) return b;
    }
    return Buffer.allocUnsafe(Math.max(n, READ_BUFFER_BYTES));
  }

  /** A grain marker at `at` of `buf` (file offset `bufBase + at`): size, then zlib data. */
  private async decodeMarked(buf: Uint8Array, at: number, bufBase: number, grain: number, gtEntryOffset: number, dest?: Uint8Array): Promise<Uint8Array> {
    const pos = bufBase + at;
    const m = GRAIN_MARKER.parse(buf, { file: this.c.source.name, base: bufBase }, at);
    const maxData = 2 * this.grainBytes;
    if (m.size === 0 || m.size > maxData) {
      throw new CorruptImageError(`grain marker size ${m.size} is invalid (1..${maxData})`, { file: this.c.source.name, field: 'grain marker size', offset: pos + GRAIN_MARKER.offsetOf('size') });
    }
    const from = at + GRAIN_MARKER.size;
    // Only a hand-made grain larger than zlib's bound reaches past what the group read.
    const data = from + m.size <= buf.length ? buf.subarray(from, from + m.size) : await this.c.source.read(pos + GRAIN_MARKER.size, m.size);
    return this.inflated(data, grain, pos, gtEntryOffset, dest);
  }

  /** The grain's bytes, inflated into `dest` (a whole grain's room) when given, else into a buffer of their own. */
  private async inflated(data: Uint8Array, grain: number, pos: number, gtEntryOffset: number, dest?: Uint8Array): Promise<Uint8Array> {
    const G = this.grainBytes;
    const where = { file: this.c.source.name, field: 'compressed grain', offset: pos };
    const out = dest ? dest.subarray(0, inflateGrainInto(data, dest, where)) : inflateGrain(data, G, where);
    const need = Math.min(G, this.length - grain * G);
    if (out.length < need) {
      throw new CorruptImageError(`compressed grain inflates to ${out.length} bytes, expected ${need}`, { file: this.c.source.name, offset: gtEntryOffset, field: 'grain table entry' });
    }
    return out;
  }

  /**
   * A compressed grain without a marker (compressed flag, no marker flag): the zlib data starts at
   * the entry and its length is unknown, so QEMU's bound applies — up to two grains are read.
   */
  private async decodeGrain(sector: number, grain: number, gtEntryOffset: number, dest?: Uint8Array): Promise<Uint8Array> {
    const pos = sector * SECTOR;
    const data = await this.c.source.read(pos, Math.min(this.fileSize - pos, 2 * this.grainBytes));
    return this.inflated(data, grain, pos, gtEntryOffset, dest);
  }

  info(): ExtentInfo {
    return {
      filename: this.c.source.name,
      format: this.c.format,
      virtualSize: this.length,
      clusterSize: this.grainBytes,
      ...(this.c.compressed ? { compressed: true } : {}),
    };
  }

  /**
   * Walks every grain table: entries past the end of the file (qemu-img check's one VMDK test,
   * with its wording), tables that differ from their redundant copy, and — for stream-optimized
   * extents — grain markers that do not name the grain pointing at them.
   */
  async check(virtualBase: number): Promise<ExtentCheck> {
    const G = this.grainBytes;
    const grains = Math.ceil(this.length / G);
    const r: ExtentCheck = { corruptions: 0, checkErrors: 0, messages: [] };
    const corrupt = (line: string) => {
      r.corruptions++;
      noteCheckMessage(r.messages, line);
    };
    if (this.c.damage) corrupt(this.c.damage);
    const marker = new Uint8Array(GRAIN_MARKER.size);
    const checkTable = async (i: number, sector: number) => {
      let gt: Uint32Array;
      try {
        // Both copies as stored (the reader may have set a damaged primary aside), then the one in use.
        const primary = await this.readGt(sector);
        const alt = await this.c.redundantGd?.at(i);
        if (alt) {
          const rgt = await this.readGt(alt);
          if (rgt.some((v, j) => v !== primary[j])) corrupt(`ERROR: grain table ${i} differs from its redundant copy`);
        }
        gt = await this.loadGt(i, sector);
      } catch (e) {
        r.checkErrors++;
        noteCheckMessage(r.messages, `ERROR: could not read grain table ${i}: ${(e as Error).message}`);
        return;
      }
      for (let j = 0; j < gt.length; j++) {
        const grain = i * this.c.gtEntries + j;
        if (grain >= grains) break;
        if (this.classify(gt[j]) !== 'allocated') continue;
        const sector = (virtualBase + grain * G) / SECTOR;
        if (gt[j] * SECTOR >= this.fileSize) {
          corrupt(`ERROR: cluster offset for sector ${sector} points after EOF`);
          continue;
        }
        if (!this.c.compressed || !this.c.markers) continue;
        const got = await this.c.source.readUpTo(gt[j] * SECTOR, GRAIN_MARKER.size, marker);
        const m = got.length === GRAIN_MARKER.size ? GRAIN_MARKER.parse(got) : undefined;
        if (!m || m.lba !== BigInt(grain * this.c.grainSectors) || m.size === 0 || m.size > 2 * G) {
          corrupt(`ERROR: grain marker for sector ${sector} does not describe that grain`);
        }
      }
    };
    // The directory is streamed (the walk yields to the event loop between its chunks), and so is
    // every table it names: many tables mean real reads, which let signals through too.
    await this.c.gd.walk(async (start, entries) => {
      if (isUniform(entries) && entries[0] === 0) return;
      for (let k = 0; k < entries.length; k++) if (entries[k]) await checkTable(start + k, entries[k]);
    });
    return r;
  }
}
