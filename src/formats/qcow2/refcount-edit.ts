/**
 * Reading and changing the reference counts of an existing qcow2 image in place, for operations
 * that allocate or free a handful of metadata clusters (resize's new L1 table). The refcount table
 * is held in memory — at most 8 MiB, QEMU's limit, which the header parser enforces — and refcount
 * blocks are read when first needed and written back whole. Entry encoding is refcount.ts's.
 */
import { CorruptImageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import type { ByteSource } from '../../stream/source.js';
import { ceilDiv } from '../shared/bounds.js';
import type { Qcow2Header } from './header.js';
import { REFT_OFFSET_MASK_HI, REFT_OFFSET_MASK_LO, REFT_RESERVED_MASK_LO, entryOffset } from './layout.js';
import { getRefcount, readStoredRefcountTable, refcountGeometry, setRefcount, type RefcountGeometry } from './refcount.js';

interface Block {
  offset: number;
  data: Uint8Array;
  dirty: boolean;
}

export class RefcountEditor {
  readonly rg: RefcountGeometry;
  private readonly blocks = new Map<number, Block>();

  private constructor(
    private readonly source: ByteSource,
    private readonly fileSize: number,
    /** Refcount table entries as stored (offset bits and all); grows when the table is moved. */
    private table: BigUint64Array,
    readonly tableOffset: number,
    clusterBits: number,
    refcountOrder: number,
    private readonly file: string,
  ) {
    this.rg = refcountGeometry(clusterBits, refcountOrder);
  }

  /** Loads the refcount table (its part inside the file; entries past EOF read as 0, as QEMU reads them). */
  static async load(source: ByteSource, fileSize: number, h: Qcow2Header, file: string): Promise<RefcountEditor> {
    const stored = await readStoredRefcountTable(source, fileSize, h);
    const table = new BigUint64Array(stored.entries);
    for (let i = 0; i < stored.inFile; i++) table[i] = stored.table.getBigUint64(i * 8);
    return new RefcountEditor(source, fileSize, table, h.refcountTableOffset, h.clusterBits, h.refcountOrder, file);
  }

  get clusterSize(): number {
    return this.rg.clusterSize;
  }

  /** Entries the table holds. */
  get capacity(): number {
    return this.table.length;
  }

  /** Table index (refcount block number) of a host cluster. */
  blockIndex(cluster: number): number {
    return Math.floor(cluster / this.rg.entriesPerBlock);
  }

  /** Offset of refcount block `ti`, 0 when it is not allocated; refuses unaligned or reserved-bit entries. */
  blockOffset(ti: number): number {
    if (ti >= this.table.length) return 0;
    const e = this.table[ti];
    const hi = Number(e >> 32n);
    const lo = Number(e & 0xffffffffn);
    const where = { file: this.file, field: 'refcount table entry', offset: this.tableOffset + ti * 8 };
    if (lo & REFT_RESERVED_MASK_LO) throw new CorruptImageError(`refcount table entry ${ti} has reserved bits set`, where);
    const offset = entryOffset(hi, lo, REFT_OFFSET_MASK_HI, REFT_OFFSET_MASK_LO);
    if (offset % this.rg.clusterSize) throw new CorruptImageError(`refcount block ${ti} at ${offset} is not cluster aligned`, where);
    return offset;
  }

  private async block(ti: number): Promise<Block | undefined> {
    const cached = this.blocks.get(ti);
    if (cached) return cached;
    const offset = this.blockOffset(ti);
    if (offset === 0) return undefined;
    const cs = this.rg.clusterSize;
    const data = new Uint8Array(cs);
    const avail = Math.max(0, Math.min(cs, this.fileSize - offset));
    if (avail) await this.source.read(offset, avail, data.subarray(0, avail));
    const b = { offset, data, dirty: false };
    this.blocks.set(ti, b);
    return b;
  }

  async refcount(cluster: number): Promise<number> {
    const b = await this.block(this.blockIndex(cluster));
    return b ? getRefcount(b.data, cluster % this.rg.entriesPerBlock, this.rg.refcountBits) : 0;
  }

  /** The first cluster in [first, first + n) whose refcount is not 0, or −1. */
  async firstUsed(first: number, n: number): Promise<number> {
    for (let c = first; c < first + n; c++) if ((await this.refcount(c)) !== 0) return c;
    return -1;
  }

  /** Sets the refcount of a cluster whose block exists (in the file or added by addBlock). */
  async set(cluster: number, value: number): Promise<void> {
    const ti = this.blockIndex(cluster);
    const b = await this.block(ti);
    if (!b) throw new Error(`RefcountEditor: no refcount block for cluster ${cluster}`);
    setRefcount(b.data, cluster % this.rg.entriesPerBlock, this.rg.refcountBits, value);
    b.dirty = true;
  }

  /** One reference fewer for every cluster touched by [offset, offset + length); counts already 0 stay 0. */
  async release(offset: number, length: number): Promise<void> {
    if (length <= 0) return;
    const cs = this.rg.clusterSize;
    const last = Math.floor((offset + length - 1) / cs);
    for (let c = Math.floor(offset / cs); c <= last; c++) {
      const r = await this.refcount(c);
      if (r > 0) await this.set(c, r - 1);
    }
  }

  /** A refcount block that lives at `offset`, already written; its table entry is set with setEntry or a new table. */
  addBlock(ti: number, offset: number, data: Uint8Array): void {
    this.blocks.set(ti, { offset, data, dirty: false });
  }

  /** True when refcount block `ti` exists (in the file or added). */
  hasBlock(ti: number): boolean {
    return this.blocks.has(ti) || this.blockOffset(ti) !== 0;
  }

  /** Makes table entry `ti` name the block at `offset` (in memory; the caller writes the table or the entry). */
  setEntry(ti: number, offset: number): void {
    if (ti >= this.table.length) {
      const t = new BigUint64Array(ti + 1);
      t.set(this.table);
      this.table = t;
    }
    this.table[ti] = BigInt(offset);
  }

  /** The table as stored, `entries` entries padded with zeros to whole 512-byte sectors. */
  tableBytes(entries: number): Uint8Array {
    const out = new Uint8Array(ceilDiv(entries * 8, 512) * 512);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < Math.min(entries, this.table.length); i++) dv.setBigUint64(i * 8, this.table[i]);
    return out;
  }

  /** The 8 bytes of table entry `ti`. */
  entryBytes(ti: number): Uint8Array {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, this.table[ti] ?? 0n);
    return out;
  }

  /** Writes back every block changed by set() or release(). */
  async flush(sink: ByteSink): Promise<void> {
    for (const b of this.blocks.values()) {
      if (!b.dirty) continue;
      await sink.write(b.offset, b.data);
      b.dirty = false;
    }
  }
}
