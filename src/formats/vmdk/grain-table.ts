/**
 * The grain directory → grain table walk shared by hosted sparse (KDMV) and ESX COWD extents
 * (FORMATS.md §3.4, §3.6): grain = sector / grainSize; GD index = grain / GTEs per GT; the GT entry
 * is the sector of the grain (or of its marker, in a compressed extent).
 *
 * Each GT entry is classified once (unallocated, zeroed, allocated); runs of equal entries are
 * answered in one mapping so that map/convert do not walk a 16 GiB empty disk grain by grain.
 */
import { CorruptImageError } from '../../errors.js';
import { inflateZlibCapped } from '../../stream/compress.js';
import type { ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import type { Mapping } from '../shared/mapped-reader.js';
import type { ExtentInfo, ExtentReader } from './extent.js';
import { GRAIN_CACHE_ENTRIES, GRAIN_MARKER, GT_CACHE_ENTRIES, GTE_UNALLOCATED, GTE_ZEROED, SECTOR } from './layout.js';

export interface GrainTableConfig {
  source: ByteSource;
  /** Virtual bytes the extent covers. */
  length: number;
  grainSectors: number;
  gtEntries: number;
  /** Grain directory (sector numbers of grain tables) and where it was read, for errors. */
  gd: Uint32Array;
  gdOffset: number;
  /** The redundant directory, used for a grain table whose primary copy is damaged. */
  redundantGd?: Uint32Array;
  zeroedGrains: boolean;
  compressed: boolean;
  markers: boolean;
  /** Descriptor type shown by info ('' for a file opened directly). */
  format: string;
  warnings: string[];
  /** Why the primary directory was set aside at open, when it was (a corruption for check). */
  damage?: string;
}

/** What check found in one extent. */
export interface ExtentCheck {
  grains: number;
  allocated: number;
  compressed: number;
  corruptions: string[];
  checkErrors: string[];
}

type GrainKind = 'unallocated' | 'zeroed' | 'allocated';

/** Compressed grains decoded together by one load (2 MiB of 64 KiB grains). */
const MAX_PARALLEL_GRAINS = 32;

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
  private loadGt(gdIndex: number): Promise<Uint32Array> {
    return this.gts.get(gdIndex, async () => {
      const gt = await this.readGt(this.c.gd[gdIndex]);
      if (this.firstBadEntry(gt) < 0) return gt;
      const alt = this.c.redundantGd?.[gdIndex];
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
    const spanEnd = (gdIndex + 1) * this.gtSpan;
    if (gdIndex >= this.c.gd.length) {
      throw new CorruptImageError(`offset ${offset} lies beyond the grain directory (${this.c.gd.length} entries)`, {
        file: this.c.source.name,
        field: 'grain directory',
        offset: this.c.gdOffset,
      });
    }
    if (this.c.gd[gdIndex] === 0) return { kind: 'unallocated', length: Math.min(maxLength, spanEnd - offset) };
    const gt = await this.loadGt(gdIndex);
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
    if (entry * SECTOR >= this.fileSize) throw this.pastEnd(entry, gdIndex, i);
    if (this.c.compressed) {
      // A run of compressed grains is answered at once, so that they inflate in parallel on the
      // thread pool instead of one after the other.
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
          const jobs: Promise<void>[] = [];
          for (let k = first, at = 0; at < into.length; k++) {
            const g = base + k;
            const from = k === first ? inGrain : 0;
            const n = Math.min(G - from, into.length - at);
            const view = into.subarray(at, at + n);
            const e = gt[k];
            if (e * SECTOR >= this.fileSize) throw this.pastEnd(e, gdIndex, k);
            jobs.push(this.grainData(e, g, gdIndex, k).then((data) => view.set(data.subarray(from, from + n))));
            at += n;
          }
          await Promise.all(jobs);
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

  private pastEnd(entry: number, gdIndex: number, gtIndex: number): CorruptImageError {
    return new CorruptImageError(`grain table entry points to sector ${entry}, past the end of the file`, {
      file: this.c.source.name,
      field: 'grain table entry',
      offset: this.c.gd[gdIndex] * SECTOR + gtIndex * 4,
    });
  }

  private grainData(sector: number, grain: number, gdIndex: number, gtIndex: number): Promise<Uint8Array> {
    return this.grains.get(grain, () => this.inflateGrain(sector, grain, this.c.gd[gdIndex] * SECTOR + gtIndex * 4));
  }

  /**
   * Decodes one compressed grain (§3.5). With markers the GT entry points at the marker, whose
   * size field bounds the zlib data; without, the data starts at the entry (QEMU reads up to two
   * grains). QEMU's bound applies: compressed data larger than two grains is corrupt.
   */
  private async inflateGrain(sector: number, grain: number, gtEntryOffset: number): Promise<Uint8Array> {
    const G = this.grainBytes;
    const maxData = 2 * G;
    const pos = sector * SECTOR;
    const where = { file: this.c.source.name, field: 'compressed grain', offset: pos };
    let data: Uint8Array;
    if (this.c.markers) {
      // One read usually covers marker and data; a larger grain needs a second one.
      const first = await this.c.source.read(pos, Math.min(this.fileSize - pos, GRAIN_MARKER.size + G));
      const m = GRAIN_MARKER.parse(first, { file: this.c.source.name, base: pos });
      if (m.size === 0 || m.size > maxData) {
        throw new CorruptImageError(`grain marker size ${m.size} is invalid (1..${maxData})`, { ...where, field: 'grain marker size', offset: pos + 8 });
      }
      const end = GRAIN_MARKER.size + m.size;
      data = end <= first.length ? first.subarray(GRAIN_MARKER.size, end) : await this.c.source.read(pos + GRAIN_MARKER.size, m.size);
    } else {
      data = await this.c.source.read(pos, Math.min(this.fileSize - pos, maxData));
    }
    const out = await inflateZlibCapped(data, G, where);
    const need = Math.min(G, this.length - grain * G);
    if (out.length < need) {
      throw new CorruptImageError(`compressed grain inflates to ${out.length} bytes, expected ${need}`, { ...where, offset: gtEntryOffset, field: 'grain table entry' });
    }
    return out;
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
    const r: ExtentCheck = { grains: Math.ceil(this.length / G), allocated: 0, compressed: 0, corruptions: [], checkErrors: [] };
    if (this.c.damage) r.corruptions.push(this.c.damage);
    const marker = new Uint8Array(GRAIN_MARKER.size);
    for (let i = 0; i < this.c.gd.length; i++) {
      if (!this.c.gd[i]) continue;
      let gt: Uint32Array;
      try {
        // Both copies as stored (the reader may have set a damaged primary aside), then the one in use.
        const primary = await this.readGt(this.c.gd[i]);
        const alt = this.c.redundantGd?.[i];
        if (alt) {
          const rgt = await this.readGt(alt);
          if (rgt.some((v, j) => v !== primary[j])) r.corruptions.push(`ERROR: grain table ${i} differs from its redundant copy`);
        }
        gt = await this.loadGt(i);
      } catch (e) {
        r.checkErrors.push(`ERROR: could not read grain table ${i}: ${(e as Error).message}`);
        continue;
      }
      for (let j = 0; j < gt.length; j++) {
        const grain = i * this.c.gtEntries + j;
        if (grain >= r.grains) break;
        if (this.classify(gt[j]) !== 'allocated') continue;
        r.allocated++;
        const sector = (virtualBase + grain * G) / SECTOR;
        if (gt[j] * SECTOR >= this.fileSize) {
          r.corruptions.push(`ERROR: cluster offset for sector ${sector} points after EOF`);
          continue;
        }
        if (!this.c.compressed) continue;
        r.compressed++;
        if (!this.c.markers) continue;
        const got = await this.c.source.readUpTo(gt[j] * SECTOR, GRAIN_MARKER.size, marker);
        const m = got.length === GRAIN_MARKER.size ? GRAIN_MARKER.parse(got) : undefined;
        if (!m || m.lba !== BigInt(grain * this.c.grainSectors) || m.size === 0 || m.size > 2 * G) {
          r.corruptions.push(`ERROR: grain marker for sector ${sector} does not describe that grain`);
        }
      }
    }
    return r;
  }
}
