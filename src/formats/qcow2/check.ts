/**
 * `check` for qcow2: rebuild every cluster's reference count from the metadata (header, active
 * and snapshot L1/L2 tables, snapshot table, refcount table and blocks, bitmaps) and compare with
 * the stored refcounts, then verify the COPIED flags — the steps and the wording of QEMU 7.2's
 * qcow2_check_refcounts (block/qcow2-refcount.c), so the output can be diffed with `qemu-img check`.
 *
 * Bounded where QEMU is not: the rebuilt counts are one u32 per cluster of the file (never of the
 * virtual disk), tables past EOF are not read (they would read as zeros), and a work limit stops a
 * crafted image whose 65,536 snapshots all point at the same tables from running for hours.
 */
import { CorruptImageError, GuestkitError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import type { CheckResult, OpenContext } from '../types.js';
import { readBitmapDirectory } from './bitmaps.js';
import { TableCursor } from './cursor.js';
import { readHeader, type Qcow2Header } from './header.js';
import { L2Tables, bitmapAlloc, bitmapZero, entryHi, entryLo } from './l2.js';
import {
  BME_TABLE_ENTRY_FLAG_ALL_ONES,
  BME_TABLE_ENTRY_OFFSET_MASK,
  BME_TABLE_ENTRY_RESERVED_MASK,
  ClusterType,
  L1E_OFFSET_MASK_HI,
  L1E_OFFSET_MASK_LO,
  L1E_RESERVED_MASK_HI,
  L1E_RESERVED_MASK_LO,
  L2E_OFFSET_MASK_HI,
  L2E_OFFSET_MASK_LO,
  L2E_STD_RESERVED_MASK_HI,
  L2E_STD_RESERVED_MASK_LO,
  MAX_L1_BYTES,
  OFLAG_COPIED_HI,
  OFLAG_ZERO_LO,
  REFT_OFFSET_MASK_HI,
  REFT_OFFSET_MASK_LO,
  REFT_RESERVED_MASK_LO,
  SNAPSHOT_EXTRA_V3_MIN,
  classifyL2,
  compressedExtent,
  entryOffset,
} from './layout.js';
import { getRefcount, getRefcountExact, readStoredRefcountTable, refcountGeometry, type RefcountGeometry } from './refcount.js';
import { readSnapshotTable, snapshotL1Problem, type SnapshotRecord } from './snapshots.js';

/** Messages kept verbatim; beyond this only the counts grow (the 65,536-snapshot sample prints 65,543). */
const MAX_MESSAGES = 100_000;
/** L1 and L2 entries examined, beyond the tables the file itself holds several times over. */
const WORK_BASE = 1 << 24;

const hex64 = (hi: number, lo: number): string => ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16);

class WorkLimit extends Error {}

class Checker {
  readonly res: CheckResult;
  private readonly cs: number;
  private readonly rg: RefcountGeometry;
  /** Rebuilt reference counts, one per cluster of the file (plus one: QEMU tolerates a last half-written cluster). */
  private refs: Uint32Array;
  private nbClusters: number;
  private readonly refMax: number;
  private readonly l2: L2Tables;
  /** One read window for all L1 tables (snapshots may be many); entries are copied out before use. */
  private readonly cursor: TableCursor;
  private work = 0;
  private readonly workLimit: number;
  private storedTable?: DataView;
  private storedTableEntries = 0;
  private storedBlockIndex = -1;
  private storedBlock?: Uint8Array;
  private storedBlockZero = false;
  allocated = 0;
  fragmented = 0;
  compressed = 0;

  constructor(
    private readonly source: ByteSource,
    private readonly h: Qcow2Header,
    private readonly fileSize: number,
    file: string,
  ) {
    this.cs = h.geometry.clusterSize;
    this.rg = refcountGeometry(h.clusterBits, h.refcountOrder);
    this.nbClusters = Math.ceil(fileSize / this.cs);
    this.refs = new Uint32Array(this.nbClusters + 1);
    this.refMax = Math.min(this.rg.max, 0xffffffff);
    this.l2 = new L2Tables(source, fileSize, h.geometry);
    this.cursor = new TableCursor(source, fileSize);
    this.workLimit = WORK_BASE + 4 * Math.ceil(fileSize / 8);
    this.res = { filename: file, format: 'qcow2', corruptions: 0, leaks: 0, checkErrors: 0, messages: [] };
  }

  say(line: string): void {
    if (this.res.messages.length < MAX_MESSAGES) this.res.messages.push(line);
    else if (this.res.messages.length === MAX_MESSAGES) this.res.messages.push('… further messages omitted (counts stay exact)');
  }

  corrupt(line: string): void {
    this.res.corruptions++;
    this.say(line);
  }

  private spend(n: number): void {
    this.work += n;
    if (this.work > this.workLimit) throw new WorkLimit();
  }

  /** qcow2_inc_refcounts_imrt: one more reference to every cluster touched by [offset, offset + size). */
  incRef(offset: number, size: number): void {
    if (size <= 0) return;
    const cs = this.cs;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      this.corrupt(`ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x${size.toString(16)}`);
      return;
    }
    // The last cluster of an image may be half written: up to one cluster past EOF is tolerated.
    if (offset + size - this.fileSize >= cs) {
      this.corrupt(
        `ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x${size.toString(16)}`,
      );
      return;
    }
    const last = Math.floor((offset + size - 1) / cs);
    for (let c = Math.floor(offset / cs); c <= last; c++) {
      if (c >= this.nbClusters) this.nbClusters = c + 1;
      if (this.refs[c] >= this.refMax) {
        this.corrupt(`ERROR: overflow cluster offset=0x${(c * cs).toString(16)}`);
        this.say('Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing');
        continue;
      }
      this.refs[c]++;
    }
  }

  /** check_refcounts_l1: the table itself, then each L2 table it names. */
  async checkL1(l1Offset: number, l1Size: number, fragInfo: boolean): Promise<void> {
    if (!l1Size) return;
    this.incRef(l1Offset, l1Size * 8);
    // Entries past EOF read as zeros: nothing to check there, and nothing to allocate for them.
    const inFile = Math.max(0, Math.min(l1Size, Math.floor((this.fileSize - l1Offset) / 8)));
    const cursor = this.cursor;
    const CHUNK = 8192;
    for (let base = 0; base < inFile; base += CHUNK) {
      const n = Math.min(CHUNK, inFile - base);
      this.spend(n);
      const bytes = await cursor.read(l1Offset + base * 8, n * 8);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // Copy the words out: the cursor's window is reused by nested reads.
      const words = new Uint32Array(n * 2);
      for (let i = 0; i < n * 2; i++) words[i] = dv.getUint32(i * 4);
      for (let i = 0; i < n; i++) {
        const hi = words[2 * i];
        const lo = words[2 * i + 1];
        if (hi === 0 && lo === 0) continue;
        if (hi & L1E_RESERVED_MASK_HI || lo & L1E_RESERVED_MASK_LO) this.corrupt(`ERROR found L1 entry with reserved bits set: ${hex64(hi, lo)}`);
        const l2Offset = entryOffset(hi, lo, L1E_OFFSET_MASK_HI, L1E_OFFSET_MASK_LO);
        this.incRef(l2Offset, this.cs);
        if (l2Offset % this.cs) this.corrupt(`ERROR l2_offset=${l2Offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
        await this.checkL2(l2Offset, fragInfo);
      }
    }
  }

  /** check_refcounts_l2. */
  private async checkL2(l2Offset: number, fragInfo: boolean): Promise<void> {
    const g = this.h.geometry;
    const dataFile = this.h.hasDataFile;
    this.spend(g.l2Entries);
    const t = await this.l2.get(l2Offset);
    let nextContiguous = 0;
    for (let i = 0; i < g.l2Entries; i++) {
      const hi = entryHi(t, i, g);
      const lo = entryLo(t, i, g);
      const zeroBits = g.extendedL2 ? bitmapZero(t, i) : 0;
      const allocBits = g.extendedL2 ? bitmapAlloc(t, i) : 0;
      if (hi === 0 && lo === 0 && zeroBits === 0 && allocBits === 0) continue;
      const type = classifyL2(hi, lo, g.extendedL2, dataFile);
      if (type !== ClusterType.Compressed && (hi & L2E_STD_RESERVED_MASK_HI || lo & L2E_STD_RESERVED_MASK_LO)) {
        this.corrupt(`ERROR found l2 entry with reserved bits set: ${hex64(hi, lo)}`);
      }
      switch (type) {
        case ClusterType.Compressed: {
          let h = hi;
          if (h & OFLAG_COPIED_HI) {
            h = (h & ~OFLAG_COPIED_HI) >>> 0;
            const off = compressedExtent(h, lo, g).offset;
            this.corrupt(`ERROR: coffset=0x${off.toString(16)}: copied flag must never be set for compressed clusters`);
          }
          if (dataFile) {
            this.corrupt(`ERROR compressed cluster ${i} with data file, entry=0x${hex64(h, lo)}`);
            break;
          }
          if (zeroBits || allocBits) {
            this.corrupt(`ERROR compressed cluster ${i} with non-zero subcluster allocation bitmap, entry=0x${hex64(h, lo)}`);
            break;
          }
          const c = compressedExtent(h, lo, g);
          this.incRef(c.offset, c.length);
          if (fragInfo) {
            this.allocated++;
            this.compressed++;
            this.fragmented++; // compressed clusters are fragmented by nature (QEMU counts them so)
          }
          break;
        }
        case ClusterType.Normal:
        case ClusterType.ZeroAlloc: {
          const offset = entryOffset(hi, lo, L2E_OFFSET_MASK_HI, L2E_OFFSET_MASK_LO);
          if (g.extendedL2 && (zeroBits & allocBits) !== 0) {
            this.corrupt(`ERROR offset=${offset.toString(16)}: Allocated cluster has corrupted subcluster allocation bitmap`);
          }
          if (offset % this.cs) {
            const containsData = g.extendedL2 ? allocBits !== 0 : !(lo & OFLAG_ZERO_LO);
            this.corrupt(
              containsData
                ? `ERROR offset=${offset.toString(16)}: Data cluster is not properly aligned; L2 entry corrupted.`
                : `ERROR offset=${offset.toString(16)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`,
            );
          }
          if (fragInfo) {
            this.allocated++;
            if (nextContiguous && offset !== nextContiguous) this.fragmented++;
            nextContiguous = offset + this.cs;
          }
          if (!dataFile) this.incRef(offset, this.cs);
          break;
        }
        case ClusterType.Unallocated:
          if (allocBits) this.corrupt('ERROR: Unallocated cluster has non-zero subcluster allocation bitmap');
          break;
        default:
          break; // ZeroPlain: nothing allocated
      }
    }
  }

  async checkBitmaps(): Promise<void> {
    const b = this.h.extensions.bitmaps;
    if (!b) return;
    this.incRef(b.directoryOffset, b.directorySize);
    let list;
    try {
      list = await readBitmapDirectory(this.source, b, this.res.filename);
    } catch (e) {
      if (!(e instanceof GuestkitError)) throw e;
      this.res.corruptions++;
      this.say(`ERROR bitmap directory: ${e.detail}`);
      return;
    }
    const cursor = new TableCursor(this.source, this.fileSize);
    for (const bm of list) {
      const tableOffset = Number(bm.tableOffset);
      this.incRef(tableOffset, bm.tableSize * 8);
      const inFile = Math.max(0, Math.min(bm.tableSize, Math.floor((this.fileSize - tableOffset) / 8)));
      for (let i = 0; i < inFile; i++) {
        if ((i & 8191) === 0) this.spend(Math.min(8192, inFile - i));
        const bytes = await cursor.read(tableOffset + i * 8, 8);
        const entry = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
        const offset = entry & BME_TABLE_ENTRY_OFFSET_MASK;
        // bitmap.c check_table_entry: reserved bits, or flag 1 / unaligned offset with an offset.
        if (entry & BME_TABLE_ENTRY_RESERVED_MASK || (offset !== 0n && (entry & BME_TABLE_ENTRY_FLAG_ALL_ONES || offset % BigInt(this.cs) !== 0n))) {
          this.res.corruptions++;
          continue;
        }
        if (offset !== 0n) this.incRef(Number(offset), this.cs);
      }
    }
  }

  /** Loads the stored refcount table (its in-file part; entries past EOF are zero). */
  async loadStoredTable(): Promise<void> {
    const stored = await readStoredRefcountTable(this.source, this.fileSize, this.h);
    this.storedTable = stored.table;
    this.storedTableEntries = stored.inFile;
  }

  private tableEntry(i: number): { hi: number; lo: number } {
    if (i >= this.storedTableEntries) return { hi: 0, lo: 0 };
    return { hi: this.storedTable!.getUint32(i * 8), lo: this.storedTable!.getUint32(i * 8 + 4) };
  }

  /** check_refblocks: each refcount block is referenced once, inside the image. */
  checkRefblocks(): void {
    const entries = (this.h.refcountTableClusters * this.cs) / 8;
    for (let i = 0; i < Math.min(entries, this.storedTableEntries); i++) {
      const { hi, lo } = this.tableEntry(i);
      if (lo & REFT_RESERVED_MASK_LO) {
        this.corrupt(`ERROR refcount table entry ${i} has reserved bits set`);
        continue;
      }
      const offset = entryOffset(hi, lo, REFT_OFFSET_MASK_HI, REFT_OFFSET_MASK_LO);
      if (offset % this.cs) {
        this.corrupt(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
        continue;
      }
      const cluster = Math.floor(offset / this.cs);
      if (cluster >= this.nbClusters) {
        this.corrupt(`ERROR refcount block ${i} is outside image`);
        continue;
      }
      if (offset !== 0) {
        this.incRef(offset, this.cs);
        if (this.refs[cluster] !== 1) this.corrupt(`ERROR refcount block ${i} refcount=${this.refs[cluster]}`);
      }
    }
  }

  /** Makes the refcount block holding `cluster` current; false when its table entry is unaligned (unreadable). */
  private async loadBlockFor(cluster: number): Promise<boolean> {
    const ti = Math.floor(cluster / this.rg.entriesPerBlock);
    if (this.storedBlockIndex === ti) return this.storedBlock !== undefined || this.storedBlockZero;
    this.storedBlockIndex = ti;
    this.storedBlock = undefined;
    this.storedBlockZero = false;
    const { hi, lo } = this.tableEntry(ti);
    const offset = entryOffset(hi, lo, REFT_OFFSET_MASK_HI, REFT_OFFSET_MASK_LO);
    if (offset === 0) {
      this.storedBlockZero = true; // no block: every refcount it would hold is 0
      return true;
    }
    if (offset % this.cs) return false;
    const block = new Uint8Array(this.cs);
    const avail = Math.max(0, Math.min(this.cs, this.fileSize - offset));
    if (avail) await this.source.read(offset, avail, block.subarray(0, avail));
    this.storedBlock = block;
    return true;
  }

  /** Stored refcount of `cluster` once its block is current. */
  private storedNow(cluster: number): number {
    if (!this.storedBlock) return 0;
    return getRefcount(this.storedBlock, cluster - this.storedBlockIndex * this.rg.entriesPerBlock, this.rg.refcountBits);
  }

  private storedExactNow(cluster: number): bigint {
    if (!this.storedBlock) return 0n;
    return getRefcountExact(this.storedBlock, cluster - this.storedBlockIndex * this.rg.entriesPerBlock, this.rg.refcountBits);
  }

  /** qcow2_get_refcount: the exact stored refcount of `cluster`, or undefined when its block cannot be read. */
  async stored(cluster: number): Promise<bigint | undefined> {
    return (await this.loadBlockFor(cluster)) ? this.storedExactNow(cluster) : undefined;
  }

  /** compare_refcounts; returns the highest cluster in use. */
  async compare(): Promise<number> {
    let highest = 0;
    const epb = this.rg.entriesPerBlock;
    for (let i = 0; i < this.nbClusters; ) {
      const blockEnd = Math.min(this.nbClusters, (Math.floor(i / epb) + 1) * epb);
      if (!(await this.loadBlockFor(i))) {
        for (; i < blockEnd; i++) {
          this.res.checkErrors++;
          this.say(`Can't get refcount for cluster ${i}: Input/output error`);
        }
        continue;
      }
      for (; i < blockEnd; i++) {
        const stored = this.storedNow(i);
        const computed = this.refs[i];
        if (stored > 0 || computed > 0) highest = i;
        if (stored === computed) continue;
        const exact = this.storedExactNow(i);
        if (stored < computed) this.corrupt(`ERROR cluster ${i} refcount=${exact} reference=${computed}`);
        else {
          this.res.leaks++;
          this.say(`Leaked cluster ${i} refcount=${exact} reference=${computed}`);
        }
      }
    }
    return highest;
  }

  /** check_oflag_copied: COPIED must be set exactly where the stored refcount is 1 (active L1 only). */
  async checkCopied(l1: DataView, l1Size: number): Promise<void> {
    const g = this.h.geometry;
    for (let i = 0; i < l1Size; i++) {
      const hi = l1.getUint32(i * 8);
      const lo = l1.getUint32(i * 8 + 4);
      const l2Offset = entryOffset(hi, lo, L1E_OFFSET_MASK_HI, L1E_OFFSET_MASK_LO);
      if (!l2Offset) continue;
      const rc = await this.stored(Math.floor(l2Offset / this.cs));
      if (rc === undefined) continue;
      if ((rc === 1n) !== ((hi & OFLAG_COPIED_HI) !== 0)) {
        this.corrupt(`ERROR OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${hex64(hi, lo)} refcount=${rc}`);
      }
      this.spend(g.l2Entries);
      const t = await this.l2.get(l2Offset);
      for (let j = 0; j < g.l2Entries; j++) {
        const ehi = entryHi(t, j, g);
        const elo = entryLo(t, j, g);
        const type = classifyL2(ehi, elo, g.extendedL2, this.h.hasDataFile);
        if (type !== ClusterType.Normal && type !== ClusterType.ZeroAlloc) continue;
        let drc: bigint | undefined = 1n;
        if (!this.h.hasDataFile) {
          drc = await this.stored(Math.floor(entryOffset(ehi, elo, L2E_OFFSET_MASK_HI, L2E_OFFSET_MASK_LO) / this.cs));
          if (drc === undefined) continue;
        }
        if ((drc === 1n) !== ((ehi & OFLAG_COPIED_HI) !== 0)) {
          this.corrupt(`ERROR OFLAG_COPIED data cluster: l2_entry=${hex64(ehi, elo)} refcount=${drc}`);
        }
      }
    }
  }

  stopped(): void {
    this.res.checkErrors++;
    this.say('ERROR: check stopped: the tables reference far more metadata than the file holds (crafted or badly damaged image)');
  }
}

/** Runs the check; throws only where the image cannot be opened at all (as qemu-img check fails to open it). */
export async function checkQcow2(source: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const file = ctx.file;
  if (!source.seekable || source.size === undefined) throw new CorruptImageError('qcow2 images can only be checked from a file', { file });
  const fileSize = source.size;
  const h = await readHeader(source, { file, forCheck: true });
  const k = new Checker(source, h, fileSize, file);
  const cs = h.geometry.clusterSize;

  let snapshots: SnapshotRecord[] = [];
  let snapshotsLength = 0;
  try {
    const t = await readSnapshotTable(source, h.snapshotsOffset, h.nbSnapshots, file);
    snapshots = t.entries;
    snapshotsLength = t.length;
  } catch (e) {
    if (!(e instanceof GuestkitError)) throw e;
    k.res.checkErrors++;
    k.say(`Failed to read the snapshot table: ${e.detail}`);
  }
  if (h.version === 3) {
    for (const s of snapshots) if (s.extraDataSize < SNAPSHOT_EXTRA_V3_MIN) k.corrupt(`ERROR snapshot table entry ${s.index} is incomplete`);
  }

  // The active L1 table (the reader refuses one past EOF; here its in-file part is checked).
  const l1Entries = Math.max(0, Math.min(h.l1Size, Math.floor((fileSize - h.l1TableOffset) / 8)));
  const l1Bytes = new Uint8Array(l1Entries * 8);
  if (l1Entries) await source.read(h.l1TableOffset, l1Bytes.length, l1Bytes);

  let highest = 0;
  try {
    k.incRef(0, cs);
    await k.checkL1(h.l1TableOffset, h.l1Size, true);
    if (h.hasDataFile && snapshots.length) k.corrupt(`ERROR ${snapshots.length} snapshots in image with data file`);
    for (const s of snapshots) {
      const problem = snapshotL1Problem(s, cs, MAX_L1_BYTES / 8);
      if (problem) {
        k.corrupt(problem);
        continue;
      }
      await k.checkL1(Number(s.l1TableOffset), s.l1Size, false);
    }
    k.incRef(h.snapshotsOffset, snapshotsLength);
    k.incRef(h.refcountTableOffset, h.refcountTableClusters * cs);
    await k.checkBitmaps();
    await k.loadStoredTable();
    k.checkRefblocks();
    highest = await k.compare();
    await k.checkCopied(new DataView(l1Bytes.buffer), l1Entries);
  } catch (e) {
    if (!(e instanceof WorkLimit)) throw e;
    k.stopped();
  }
  const r = k.res;
  r.imageEndOffset = (highest + 1) * cs;
  r.totalClusters = Math.ceil(h.virtualSize / cs);
  r.allocatedClusters = k.allocated;
  r.fragmentedClusters = k.fragmented;
  r.compressedClusters = k.compressed;
  return r;
}

