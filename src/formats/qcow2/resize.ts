/**
 * Growing a qcow2 image in place, as QEMU's qcow2_co_truncate grows one (block/qcow2.c,
 * qcow2_grow_l1_table in qcow2-cluster.c): the new range is unallocated, so it reads as zeros;
 * only the header's size changes, and the active L1 table grows when the new size needs more L2
 * tables than it can name. Internal snapshots keep their own L1 tables and sizes (v3 records each
 * snapshot's disk size; QEMU refuses v2 images with snapshots, and so do we).
 *
 * The L1 table grows in place when the new entries still fit in its clusters; otherwise a new one
 * is written after the end of the file, with refcount blocks (and a larger refcount table) added
 * there when the clusters it takes need them, the header is switched to it, and the old clusters
 * are freed. Every step before the switch writes only space nothing references yet; the switch is
 * one write of the header sector; an interruption after it leaves at worst leaked clusters (refcount
 * 1, referenced by nothing), which `qemu-img check -r leaks` reclaims — never a refcount below its
 * references.
 *
 * Shrinking is refused: it must discard the clusters past the new end, copy-on-write L2 tables that
 * snapshots share, and give back refcount blocks and file space.
 */
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError, UsageError } from '../../errors.js';
import { ceilDiv } from '../shared/bounds.js';
import { openQcow2Backing } from './reader.js';
import { checkShrink, targetSize, withImageFile, type ImageFile } from '../shared/resize.js';
import type { ResizeOptions, ResizeResult, ResizeTarget } from '../types.js';
import { headerField, readHeader, requireL1InFile, type Qcow2Header } from './header.js';
import {
  AUTOCLEAR_BITMAPS,
  AUTOCLEAR_DATA_FILE_RAW,
  MAX_L1_BYTES,
  MAX_REFTABLE_BYTES,
  QCOW2_HEADER_V2,
  QCOW2_HEADER_V3,
  l1EntriesFor,
} from './layout.js';
import { RefcountEditor } from './refcount-edit.js';
import { setRefcount } from './refcount.js';

const SECTOR = 512;
/** Autoclear bits we know and keep; any other must be cleared by a writer that changes the image (spec). */
const AUTOCLEAR_KNOWN = AUTOCLEAR_BITMAPS | AUTOCLEAR_DATA_FILE_RAW;

export async function resizeQcow2(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult> {
  const file = opts.ctx.file;
  return withImageFile(path, file, async (f) => {
    const h = await readHeader(f.source, { file });
    refuseUnsafe(h, file);
    const oldSize = h.virtualSize;
    const newSize = targetSize(target, oldSize, file);
    // qcow2_co_truncate: "The new size must be a multiple of 512".
    if (newSize % SECTOR) throw new UsageError(`the new size of a qcow2 image must be a multiple of 512 (got ${newSize})`, { file });
    checkShrink(newSize, oldSize, opts, 'qcow2', false, 'create a smaller image and convert into it instead');
    if (newSize === oldSize) return { format: 'qcow2', oldSize, newSize };
    if (h.nbSnapshots > 0 && h.version === 2) {
      // v2 snapshot entries do not record their disk size, so a snapshot could not be reverted safely (QEMU's rule).
      throw new UnsupportedFeatureError("can't resize a v2 image which has snapshots (only v3 records each snapshot's size)", headerField(file, 'nbSnapshots'));
    }
    await refuseUncoveringBacking(h, oldSize, opts);
    await grow(f, h, newSize, file);
    return { format: 'qcow2', oldSize, newSize };
  });
}

/** What we will not write into: a resize must not make a damaged image worse or drop state it does not understand. */
function refuseUnsafe(h: Qcow2Header, file: string): void {
  if (h.corrupt) throw new UnsupportedFeatureError('image is marked corrupt; repair it (qemu-img check -r all) before resizing', headerField(file, 'incompatibleFeatures'));
  if (h.dirty) {
    throw new UnsupportedFeatureError('image is marked dirty: its reference counts are stale (lazy refcounts); repair it (qemu-img check -r all) before resizing', headerField(file, 'incompatibleFeatures'));
  }
  if (h.hasDataFile) {
    throw new UnsupportedFeatureError('images with an external data file are not resized: the data file would have to be resized with them', headerField(file, 'incompatibleFeatures'));
  }
  if (h.extensions.bitmaps) {
    throw new UnsupportedFeatureError('images with persistent dirty bitmaps are not resized: every bitmap would have to be resized with the disk', {
      file,
      field: 'bitmaps extension',
    });
  }
}

/**
 * Growing over a backing image larger than the old size would make the backing file's data
 * appear in the new range. QEMU writes zero clusters there first (bdrv_co_truncate with
 * BDRV_REQ_ZERO_WRITE); we do not, so we read the backing image's size (its header only, never
 * its own backing file, never writing to it) and refuse in that case.
 */
async function refuseUncoveringBacking(h: Qcow2Header, oldSize: number, opts: ResizeOptions): Promise<void> {
  if (h.backingFile === undefined) return;
  const backing = await openQcow2Backing(h, opts.ctx, { ...opts.ctx, openBacking: false });
  const backingSize = backing.virtualSize;
  await backing.close();
  if (backingSize > oldSize) {
    throw new UnsupportedFeatureError(
      `the backing image '${h.backingFile}' (${backingSize} bytes) is larger than this image (${oldSize} bytes): growing would uncover its data past the old end; create a new overlay of the new size instead`,
      { file: opts.ctx.file, field: 'backing file' },
    );
  }
}

async function grow(f: ImageFile, h: Qcow2Header, newSize: number, file: string): Promise<void> {
  const g = h.geometry;
  const cs = g.clusterSize;
  const newL1 = l1EntriesFor(newSize, g);
  if (newL1 * 8 > MAX_L1_BYTES) {
    throw new UsageError(`${newSize} bytes is too large for a qcow2 image with ${cs}-byte clusters (its L1 table would exceed QEMU's ${MAX_L1_BYTES} bytes)`, { file });
  }
  if (newL1 <= h.l1Size) {
    await commitHeader(f, h, { size: newSize }, file);
    return;
  }
  const fileSize = f.source.size;
  const oldL1Bytes = h.l1Size * 8;
  requireL1InFile(h, fileSize, file);
  if (h.l1Size > 0 && ceilDiv(newL1 * 8, cs) === ceilDiv(oldL1Bytes, cs)) {
    // The new entries fit in the clusters the table already owns: clear them (nothing refers to
    // them while l1_size excludes them), then switch the size.
    await f.sink.write(h.l1TableOffset + oldL1Bytes, new Uint8Array(newL1 * 8 - oldL1Bytes));
    await f.sink.sync();
    await commitHeader(f, h, { size: newSize, l1Size: newL1 }, file);
    return;
  }
  await moveL1(f, h, newSize, newL1, file);
}

/** Where the new metadata goes: clusters [start, start + l1 + blocks.length + tableClusters), all free. */
interface Region {
  start: number;
  l1Clusters: number;
  /** Table indices of the refcount blocks to add, in order after the L1 table. */
  blocks: number[];
  /** Clusters of a new, larger refcount table after the blocks; 0 to keep the table. */
  tableClusters: number;
  /** Entries the new table needs. */
  tableEntries: number;
}

const MAX_PLAN_ROUNDS = 64;

/**
 * The region's layout is a fixed point (refcount structures count themselves): its clusters may
 * need refcount blocks the table lacks, which take clusters of the region, which may need a larger
 * table, which takes clusters too (QEMU's alloc_refcount_block does the same dance).
 */
async function planRegion(ed: RefcountEditor, from: number, l1Clusters: number, file: string): Promise<Region> {
  const epb = ed.rg.entriesPerBlock;
  let start = from;
  let blocks: number[] = [];
  let tableClusters = 0;
  for (let round = 0; round < MAX_PLAN_ROUNDS; round++) {
    const total = l1Clusters + blocks.length + tableClusters;
    const busy = await ed.firstUsed(start, total);
    if (busy >= 0) {
      start = busy + 1; // a refcount past EOF (an odd but valid image): look further on
      continue;
    }
    const first = Math.floor(start / epb);
    const last = Math.floor((start + total - 1) / epb);
    const missing: number[] = [];
    for (let ti = first; ti <= last; ti++) if (!ed.hasBlock(ti)) missing.push(ti);
    const tableEntries = Math.max(ed.capacity, last + 1);
    const needTable = last + 1 > ed.capacity ? ceilDiv(tableEntries * 8, ed.clusterSize) : 0;
    if (needTable * ed.clusterSize > MAX_REFTABLE_BYTES) {
      throw new LimitExceededError(`the image would need a refcount table over QEMU's ${MAX_REFTABLE_BYTES} bytes`, { file, field: 'refcount table' });
    }
    if (missing.length === blocks.length && missing.every((ti, i) => blocks[i] === ti) && needTable === tableClusters) {
      return { start, l1Clusters, blocks, tableClusters, tableEntries };
    }
    blocks = missing;
    tableClusters = needTable;
  }
  throw new CorruptImageError('could not find free clusters for the new L1 table (the refcounts past the end of the file keep changing the plan)', {
    file,
    field: 'refcount table',
  });
}

async function moveL1(f: ImageFile, h: Qcow2Header, newSize: number, newL1: number, file: string): Promise<void> {
  const cs = h.geometry.clusterSize;
  const fileSize = f.source.size;
  const ed = await RefcountEditor.load(f.source, fileSize, h, file);
  const r = await planRegion(ed, ceilDiv(fileSize, cs), ceilDiv(newL1 * 8, cs), file);
  const total = r.l1Clusters + r.blocks.length + r.tableClusters;
  const epb = ed.rg.entriesPerBlock;
  const l1Offset = r.start * cs;

  // 1. New refcount blocks, each counting the region's clusters it covers.
  const fresh = new Set(r.blocks);
  for (let k = 0; k < r.blocks.length; k++) {
    const ti = r.blocks[k];
    const data = new Uint8Array(cs);
    for (let c = Math.max(r.start, ti * epb); c < Math.min(r.start + total, (ti + 1) * epb); c++) setRefcount(data, c - ti * epb, ed.rg.refcountBits, 1);
    const at = (r.start + r.l1Clusters + k) * cs;
    await f.sink.write(at, data);
    ed.addBlock(ti, at, data);
    ed.setEntry(ti, at);
  }
  // 2. The new L1 table: the old entries, then zeros (whole sectors; the rest of its last cluster is a hole).
  const l1 = new Uint8Array(ceilDiv(newL1 * 8, SECTOR) * SECTOR);
  if (h.l1Size) await f.source.read(h.l1TableOffset, h.l1Size * 8, l1.subarray(0, h.l1Size * 8));
  await f.sink.write(l1Offset, l1);
  // 3. The region's clusters that fall in existing refcount blocks.
  for (let c = r.start; c < r.start + total; c++) if (!fresh.has(ed.blockIndex(c))) await ed.set(c, 1);
  let table: { offset: number; clusters: number } | undefined;
  if (r.tableClusters) {
    table = { offset: (r.start + r.l1Clusters + r.blocks.length) * cs, clusters: r.tableClusters };
    await f.sink.write(table.offset, ed.tableBytes(r.tableEntries));
    await f.sink.sync();
  } else {
    // The blocks must be on disk before the table entries that name them.
    await f.sink.sync();
    for (const ti of r.blocks) await f.sink.write(ed.tableOffset + ti * 8, ed.entryBytes(ti));
  }
  await ed.flush(f.sink);
  await f.sink.sync();

  // 4. The switch: size, L1 and (when it moved) the refcount table, in one header sector.
  await commitHeader(f, h, { size: newSize, l1Size: newL1, l1TableOffset: l1Offset, refcountTable: table }, file);

  // 5. Free what the header no longer names.
  await ed.release(h.l1TableOffset, h.l1Size * 8);
  if (table) await ed.release(h.refcountTableOffset, h.refcountTableClusters * cs);
  await ed.flush(f.sink);
  await f.sink.sync();
}

interface HeaderChange {
  size: number;
  l1Size?: number;
  l1TableOffset?: number;
  refcountTable?: { offset: number; clusters: number };
}

/**
 * Rewrites the first sector with the changed fields (everything else, extensions included, as it
 * was): a single-sector write, so the header is either the old one or the new one.
 */
async function commitHeader(f: ImageFile, h: Qcow2Header, c: HeaderChange, file: string): Promise<void> {
  const head = await f.source.readUpTo(0, SECTOR);
  const fields = {
    size: c.size,
    l1Size: c.l1Size ?? h.l1Size,
    l1TableOffset: c.l1TableOffset ?? h.l1TableOffset,
    refcountTableOffset: c.refcountTable?.offset ?? h.refcountTableOffset,
    refcountTableClusters: c.refcountTable?.clusters ?? h.refcountTableClusters,
  };
  // serialize() writes the declared fields only: extensions and compression_type stay as they are.
  if (h.version === 2) {
    QCOW2_HEADER_V2.serialize({ ...QCOW2_HEADER_V2.parse(head, { file }), ...fields }, head);
  } else {
    const v3 = QCOW2_HEADER_V3.parse(head, { file });
    QCOW2_HEADER_V3.serialize({ ...v3, ...fields, autoclearFeatures: v3.autoclearFeatures & AUTOCLEAR_KNOWN }, head);
  }
  await f.sink.write(0, head);
  await f.sink.sync();
}
