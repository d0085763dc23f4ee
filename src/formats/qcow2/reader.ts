/**
 * qcow2 reader: answers MappedReader's one question — what backs the virtual range at `offset`? —
 * by walking L1 → L2 (spec "Cluster mapping"; QEMU qcow2-cluster.c qcow2_get_host_offset), and
 * MappedReader does the reading, backing fall-through and extents.
 *
 * One map() answer covers as many consecutive clusters (or subclusters) of one L2 table as share
 * a kind — and, for data, contiguous host offsets — so a sequential read of a 64 KiB-cluster image
 * costs one call per 512 MiB of disk, and the loop over entries allocates nothing.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { CorruptImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import { inflateOnLane } from '../../stream/inflate-lanes.js';
import { retryingSource } from '../../stream/retry.js';
import { FileSource, type ByteSource } from '../../stream/source.js';
import { LruCache } from '../shared/lru.js';
import { MappedReader, type Mapping } from '../shared/mapped-reader.js';
import { openedInside, resolveConfined } from '../shared/paths.js';
import type { Extent, FormatInfo, ImageReader, OpenContext } from '../types.js';
import { bitmapInfo, readBitmapDirectory, type BitmapRecord } from './bitmaps.js';
import { decompressCluster, decompressClusterInto } from './compressed.js';
import { readHeader, requireL1InFile, type Qcow2Header } from './header.js';
import { bitmapAlloc, bitmapZero, entryHi, entryLo, L2Tables } from './l2.js';
import {
  ClusterType,
  COMPRESSION_NAMES,
  L1E_OFFSET_MASK_HI,
  L1E_OFFSET_MASK_LO,
  L2E_OFFSET_MASK_HI,
  L2E_OFFSET_MASK_LO,
  classifyL2,
  COMPRESSED_SECTOR,
  COMPRESSION_ZLIB,
  compressedExtent,
  entryOffset,
  type Geometry,
} from './layout.js';
import { readSnapshotTable, snapshotInfo, type SnapshotRecord } from './snapshots.js';

// Kinds of one unit (cluster or subcluster) while a run is being extended.
const K_DATA = 1;
const K_ZERO = 2;
const K_UNALLOC = 3;
const K_INVALID = 4;

export interface Qcow2ReaderParts {
  source: ByteSource;
  header: Qcow2Header;
  l1: DataView;
  ctx: OpenContext;
  backing?: ImageReader;
  dataFile?: { source: ByteSource; path: string };
  snapshots: SnapshotRecord[];
  bitmaps?: BitmapRecord[];
  warnings: string[];
}

export class Qcow2Reader extends MappedReader {
  readonly format = 'qcow2';
  readonly header: Qcow2Header;
  private readonly g: Geometry;
  private readonly l1: DataView;
  private readonly l2: L2Tables;
  private readonly fileSize: number;
  private readonly ctx: OpenContext;
  private readonly backingReader?: ImageReader;
  private readonly dataFile?: { source: ByteSource; path: string };
  private readonly dataSize: number;
  private readonly snapshots: SnapshotRecord[];
  private readonly bitmaps?: BitmapRecord[];
  private readonly warnings: string[];
  /** Recently decompressed clusters, so reads smaller than a cluster do not inflate it again. */
  private readonly inflated = new LruCache<number, Uint8Array>(4);

  constructor(p: Qcow2ReaderParts) {
    super(p.source, p.header.virtualSize, p.backing);
    this.header = p.header;
    this.g = p.header.geometry;
    this.l1 = p.l1;
    this.fileSize = p.source.size ?? Number.MAX_SAFE_INTEGER;
    this.l2 = new L2Tables(p.source, this.fileSize, this.g);
    this.ctx = p.ctx;
    this.backingReader = p.backing;
    this.dataFile = p.dataFile;
    this.dataSize = p.dataFile?.source.size ?? this.fileSize;
    this.snapshots = p.snapshots;
    this.bitmaps = p.bitmaps;
    this.warnings = p.warnings;
  }

  private l1Offset(index: number): number {
    return entryOffset(this.l1.getUint32(index * 8), this.l1.getUint32(index * 8 + 4), L1E_OFFSET_MASK_HI, L1E_OFFSET_MASK_LO);
  }

  protected async map(offset: number, maxLength: number): Promise<Mapping> {
    const g = this.g;
    const cs = g.clusterSize;
    const l1Index = Math.floor(offset / g.l2Coverage);
    const tableBase = l1Index * g.l2Coverage;
    const end = offset + maxLength;
    const l2Offset = this.l1Offset(l1Index);
    if (l2Offset === 0) {
      // Whole L2 ranges unallocated: extend across consecutive empty L1 entries.
      let runEnd = tableBase + g.l2Coverage;
      for (let i = l1Index + 1; runEnd < end && i < this.header.l1Size && this.l1Offset(i) === 0; i++) runEnd += g.l2Coverage;
      return { kind: 'unallocated', length: Math.min(runEnd, end) - offset };
    }
    if (l2Offset % cs !== 0) {
      throw new CorruptImageError(`L2 table offset 0x${l2Offset.toString(16)} unaligned (L1 index 0x${l1Index.toString(16)})`, {
        file: this.ctx.file,
        field: 'L1 entry',
        offset: this.header.l1TableOffset + l1Index * 8,
      });
    }
    const table = await this.l2.get(l2Offset);
    const limit = Math.min(end, tableBase + g.l2Coverage);
    const unit = g.subclusterSize;

    let kind = 0;
    let host = 0; // host offset of `offset` for a data run
    let pos = offset;
    while (pos < limit) {
      const index = Math.floor((pos - tableBase) / cs);
      const hi = entryHi(table, index, g);
      const lo = entryLo(table, index, g);
      const type = classifyL2(hi, lo, g.extendedL2, this.header.hasDataFile);
      if (type === ClusterType.Compressed) {
        if (pos !== offset) break;
        return this.mapCompressed(offset, limit, table, tableBase, l2Offset, index);
      }
      const clusterStart = tableBase + index * cs;
      const clusterOff = entryOffset(hi, lo, L2E_OFFSET_MASK_HI, L2E_OFFSET_MASK_LO);
      if (type === ClusterType.Normal && clusterOff % cs !== 0) {
        throw new CorruptImageError(
          `cluster allocation offset 0x${clusterOff.toString(16)} unaligned (L2 offset 0x${l2Offset.toString(16)}, L2 index 0x${index.toString(16)})`,
          { file: this.ctx.file, field: 'L2 entry', offset: l2Offset + index * g.l2EntryBytes },
        );
      }
      // Walk the units of this cluster from `pos`: the whole cluster, or its subclusters.
      const clusterEnd = Math.min(limit, clusterStart + cs);
      const allocBits = g.extendedL2 ? bitmapAlloc(table, index) : 0;
      const zeroBits = g.extendedL2 ? bitmapZero(table, index) : 0;
      while (pos < clusterEnd) {
        let k: number;
        let sub = 0;
        let unitEnd: number;
        if (!g.extendedL2) {
          k = type === ClusterType.Normal ? K_DATA : type === ClusterType.Unallocated ? K_UNALLOC : K_ZERO;
          unitEnd = clusterEnd;
        } else {
          sub = Math.floor((pos - clusterStart) / unit);
          unitEnd = Math.min(clusterEnd, clusterStart + (sub + 1) * unit);
          const isZero = ((zeroBits >>> sub) & 1) === 1;
          const isAlloc = ((allocBits >>> sub) & 1) === 1;
          // qcow2.h qcow2_get_subcluster_type.
          if (type === ClusterType.Normal) k = (zeroBits & allocBits) !== 0 ? K_INVALID : isZero ? K_ZERO : isAlloc ? K_DATA : K_UNALLOC;
          else k = allocBits !== 0 ? K_INVALID : isZero ? K_ZERO : K_UNALLOC;
        }
        if (k === K_INVALID) {
          throw new CorruptImageError(`invalid cluster entry found (L2 offset 0x${l2Offset.toString(16)}, L2 index 0x${index.toString(16)}): bad subcluster bitmap`, {
            file: this.ctx.file,
            field: 'L2 subcluster bitmap',
            offset: l2Offset + index * g.l2EntryBytes + 8,
          });
        }
        const unitHost = k === K_DATA ? clusterOff + (pos - clusterStart) : 0;
        if (kind === 0) {
          kind = k;
          host = unitHost;
        } else if (k !== kind || (k === K_DATA && unitHost !== host + (pos - offset))) {
          return this.answer(kind, offset, pos - offset, host);
        }
        pos = unitEnd;
      }
    }
    return this.answer(kind, offset, pos - offset, host);
  }

  private answer(kind: number, offset: number, length: number, host: number): Mapping {
    if (kind === K_ZERO) return { kind: 'zero', length };
    if (kind === K_UNALLOC) return { kind: 'unallocated', length };
    if (this.header.hasDataFile && !this.dataFile) {
      throw new UnsupportedFeatureError('the external data file was not opened (backing files disabled), so data clusters cannot be read', {
        file: this.ctx.file,
        field: 'data file',
      });
    }
    const source = this.dataFile?.source;
    // Data past the end of its file reads as zeros, as QEMU's file layer returns them.
    if (host >= this.dataSize) return { kind: 'data', length, load: async (into) => void into.fill(0) };
    const inFile = Math.min(length, this.dataSize - host);
    return source ? { kind: 'data', length: inFile, hostOffset: host, source } : { kind: 'data', length: inFile, hostOffset: host };
  }

  /**
   * Compressed clusters from `index` on, as one mapping: those whose payloads follow each other in
   * the file (QEMU packs them back to back, in cluster order) are fetched in one read and inflated
   * one by one, instead of one small read each — a 2 GiB compressed image is ~20,000 clusters.
   * A group stops at the first cluster that is not compressed or not adjacent, at `limit`, and at
   * MAX_GROUP_CLUSTERS / MAX_GROUP_BYTES, which bound what a hostile table can make us read at once.
   */
  private mapCompressed(offset: number, limit: number, table: DataView, tableBase: number, l2Offset: number, index: number): Mapping {
    const g = this.g;
    const cs = g.clusterSize;
    const entryWhere = (i: number) => ({ file: this.ctx.file, field: 'compressed cluster', offset: l2Offset + i * g.l2EntryBytes });
    if (this.header.hasDataFile) throw new CorruptImageError('compressed cluster in an image with an external data file', entryWhere(index));
    const extentAt = (i: number, hi: number, lo: number) => {
      const e = compressedExtent(hi, lo, g);
      return { index: i, at: e.offset, length: e.length };
    };
    const members = [extentAt(index, entryHi(table, index, g), entryLo(table, index, g))];
    let spanStart = members[0].at;
    let spanEnd = members[0].at + members[0].length;
    for (let i = index + 1; i < g.l2Entries && tableBase + i * cs < limit && members.length < MAX_GROUP_CLUSTERS; i++) {
      const hi = entryHi(table, i, g);
      const lo = entryLo(table, i, g);
      if (classifyL2(hi, lo, g.extendedL2, this.header.hasDataFile) !== ClusterType.Compressed) break;
      const e = extentAt(i, hi, lo);
      // Adjacent: starts inside the span or in the sector right after it (payloads share sectors).
      if (e.at < spanStart || e.at > spanEnd + COMPRESSED_SECTOR || Math.max(spanEnd, e.at + e.length) - spanStart > MAX_GROUP_BYTES) break;
      members.push(e);
      spanEnd = Math.max(spanEnd, e.at + e.length);
    }
    const end = Math.min(limit, tableBase + (members[members.length - 1].index + 1) * cs);
    return {
      kind: 'data',
      length: end - offset,
      load: async (into) => {
        // The sector range may run past EOF (the file need not be padded): read what is there.
        let span: Promise<Uint8Array> | undefined;
        const spanBytes = () =>
          (span ??= (async () => {
            const got = spanStart >= this.fileSize ? new Uint8Array(0) : await this.source.readUpTo(spanStart, Math.min(spanEnd, this.fileSize) - spanStart);
            return got.length === spanEnd - spanStart ? got : zeroPad(got, spanEnd - spanStart);
          })());
        const payload = async (m: (typeof members)[number]) => (await spanBytes()).subarray(m.at - spanStart, m.at - spanStart + m.length);
        const where = (m: (typeof members)[number]) => ({ ...entryWhere(m.index), offset: m.at });
        const inflate = async (m: (typeof members)[number]) => decompressCluster(await payload(m), this.header.compressionType, cs, where(m));
        // Where each member lies in the virtual disk, and the part of it this read wants.
        const parts = members.map((m) => {
          const cStart = tableBase + m.index * cs;
          const from = Math.max(offset, cStart);
          const to = Math.min(end, cStart + cs);
          return { cStart, from, to, whole: from === cStart && to === cStart + cs };
        });
        const placed = new Uint8Array(members.length);
        // Clusters read whole go to a worker when one is free (zlib only). The main thread inflates
        // the rest, and any the worker could not, so errors are reported as ever.
        const whole = members.flatMap((_, i) => (parts[i].whole ? [i] : []));
        if (this.header.compressionType === COMPRESSION_ZLIB && whole.length) {
          const bytes = await spanBytes();
          const payloads = whole.map((i) => bytes.subarray(members[i].at - spanStart, members[i].at - spanStart + members[i].length));
          await inflateOnLane(
            'raw',
            payloads,
            cs,
            (outputs) =>
              outputs.forEach((out, k) => {
                if (out?.length !== cs) return;
                into.set(out, parts[whole[k]].cStart - offset);
                placed[whole[k]] = 1;
              }),
            this.ctx.parallelism,
          );
        }
        for (const [i, m] of members.entries()) {
          if (placed[i]) continue;
          const { cStart, from, to } = parts[i];
          if (parts[i].whole) {
            await decompressClusterInto(await payload(m), this.header.compressionType, into, cStart - offset, cs, where(m));
            continue;
          }
          // A cluster read in part is kept for the read that wants the rest of it.
          const cluster = await this.inflated.get(m.at, () => inflate(m));
          into.set(cluster.subarray(from - cStart, to - cStart), from - offset);
        }
      },
    };
  }

  info(): FormatInfo {
    const h = this.header;
    const info: FormatInfo = { format: 'qcow2', virtualSize: this.virtualSize, clusterSize: this.g.clusterSize, dirty: h.dirty };
    if (h.backingFile !== undefined) {
      info.backingFile = h.backingFile;
      // qemu-img prints the name joined to the image's path as given (path_combine), not resolved.
      const base = this.ctx.path ?? this.ctx.file;
      info.backingFileFull = isAbsolute(h.backingFile) ? h.backingFile : join(dirname(base), h.backingFile);
      if (h.extensions.backingFormat !== undefined) info.backingFormat = h.extensions.backingFormat;
    }
    if (this.snapshots.length) info.snapshots = this.snapshots.map(snapshotInfo);
    const fs: Record<string, unknown> = { compat: h.version === 3 ? '1.1' : '0.10', 'compression-type': COMPRESSION_NAMES[h.compressionType] };
    if (h.version === 3) {
      fs['lazy-refcounts'] = h.lazyRefcounts;
      if (this.bitmaps?.length) fs.bitmaps = this.bitmaps.map(bitmapInfo);
    }
    fs['refcount-bits'] = h.refcountBits;
    if (h.version === 3) {
      if (h.hasDataFile) {
        fs['data-file'] = h.extensions.dataFile;
        fs['data-file-raw'] = h.dataFileRaw;
      }
      fs.corrupt = h.corrupt;
      fs['extended-l2'] = h.geometry.extendedL2;
    }
    info.formatSpecific = fs;
    if (this.warnings.length) info.warnings = [...this.warnings];
    return info;
  }

  files(): string[] {
    const own = this.ctx.path ? [this.ctx.path] : [];
    if (this.dataFile) own.push(this.dataFile.path);
    return [...own, ...(this.backingReader?.files() ?? [])];
  }

  override async close(): Promise<void> {
    await this.dataFile?.source.close();
    await super.close();
  }
}

/** Compressed clusters fetched by one read at most, and the most bytes that read may span. */
const MAX_GROUP_CLUSTERS = 64;
const MAX_GROUP_BYTES = 4 * 1024 * 1024;

function zeroPad(data: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(data);
  return out;
}

/** Opens a qcow2 image: header, L1, snapshot table, bitmaps, data file and backing chain. */
export async function openQcow2(source: ByteSource, ctx: OpenContext): Promise<Qcow2Reader> {
  const file = ctx.file;
  if (!source.seekable || source.size === undefined) {
    throw new UnsupportedFeatureError('qcow2 images cannot be read from a pipe (their tables need random access); save the image to a file first', { file });
  }
  const fileSize = source.size;
  const header = await readHeader(source, { file });
  const warnings = header.warnings;

  requireL1InFile(header, fileSize, file);
  const l1Bytes = header.l1Size * 8;
  const l1Buf = new Uint8Array(l1Bytes);
  if (l1Bytes) await source.read(header.l1TableOffset, l1Bytes, l1Buf);
  const l1 = new DataView(l1Buf.buffer);

  const table = await readSnapshotTable(source, header.snapshotsOffset, header.nbSnapshots, file);
  const snapshots = table.entries;
  if (table.beyondEof) {
    warnings.push('the snapshot table runs past the end of the file; entries there read as zeros (as QEMU reads them)');
  }

  let bitmaps: BitmapRecord[] | undefined;
  if (header.extensions.bitmaps) {
    try {
      bitmaps = await readBitmapDirectory(source, header.extensions.bitmaps, file);
    } catch (e) {
      // Bitmaps only describe change tracking; a damaged directory does not stop reading the disk.
      warnings.push(`persistent bitmaps ignored: ${(e as Error).message}`);
    }
  }

  let dataFile: Qcow2ReaderParts['dataFile'];
  let backing: ImageReader | undefined;
  try {
    if (header.hasDataFile && ctx.openBacking) {
      const name = header.extensions.dataFile!;
      // Resolved against the image's folder like a backing file (QEMU 7.2 opens a relative name
      // from its working directory; qemu-img create writes it that way too, so name it absolutely).
      if (!ctx.path) throw new UnsupportedFeatureError(`external data file '${name}' cannot be located for an image that is not a file`, { file, field: 'data file' });
      const confine = { referrer: ctx.path, what: 'data file', allowOutside: ctx.allowOutside };
      const path = resolveConfined(name, confine);
      dataFile = { source: retryingSource(await FileSource.open(path, path, openedInside(path, confine))), path };
    }
    if (header.backingFile !== undefined && ctx.openBacking) backing = await openQcow2Backing(header, ctx, ctx);
  } catch (e) {
    await dataFile?.source.close();
    throw e;
  }
  if (header.hasDataFile && !ctx.openBacking) warnings.push('external data file not opened: reading data clusters will fail');
  return new Qcow2Reader({ source, header, l1, ctx, backing, dataFile, snapshots, bitmaps, warnings });
}


/**
 * Opens the backing image a qcow2 header names, resolved against the image's folder with the
 * usual confinement; `childCtx` is the policy it is opened with (resize opens it without its own
 * backing file).
 */
export async function openQcow2Backing(header: Qcow2Header, ctx: OpenContext, childCtx: OpenContext): Promise<ImageReader> {
  const name = header.backingFile!;
  const file = ctx.file;
  if (!ctx.path) throw new UnsupportedFeatureError(`backing file '${name}' cannot be located for an image that is not a file`, { file, field: 'backing file' });
  const path = resolveConfined(name, { referrer: ctx.path, what: 'backing file', allowOutside: ctx.allowOutside });
  try {
    return await ctx.openImage(path, header.extensions.backingFormat, childCtx);
  } catch (e) {
    if (e instanceof UsageError && header.extensions.backingFormat !== undefined) {
      throw new UnsupportedFeatureError(`backing file format '${header.extensions.backingFormat}' is not supported`, { file, field: 'backing format', cause: e });
    }
    throw e;
  }
}
