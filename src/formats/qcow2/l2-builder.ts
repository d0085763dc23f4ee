/**
 * Builds L2 tables for the writers, one at a time in a reused cluster buffer (spec "Cluster
 * mapping"). Entries carry the COPIED bit wherever the refcount is exactly 1, as QEMU writes them
 * (qemu-img check flags a missing or wrong COPIED bit as corruption).
 */
import { OFLAG_COPIED_HI, compressedDescriptor, type Geometry } from './layout.js';

export class L2Builder {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  /** Entries set since the last reset: an all-zero table is never written. */
  used = 0;

  constructor(private readonly g: Geometry) {
    this.bytes = new Uint8Array(g.clusterSize);
    this.dv = new DataView(this.bytes.buffer);
  }

  reset(): void {
    if (this.used) this.bytes.fill(0);
    this.used = 0;
  }

  /** A data cluster at host offset `host` (refcount 1). With extended L2 every subcluster is allocated. */
  setData(index: number, host: number): void {
    const at = index * this.g.l2EntryBytes;
    this.dv.setUint32(at, (OFLAG_COPIED_HI | Math.floor(host / 0x1_0000_0000)) >>> 0);
    this.dv.setUint32(at + 4, host >>> 0);
    if (this.g.extendedL2) {
      this.dv.setUint32(at + 8, 0);
      this.dv.setUint32(at + 12, 0xffffffff);
    }
    this.used++;
  }

  /** A cluster that reads as zeros whatever the backing file holds: ZERO flag, or all zero bits with extended L2. */
  setZero(index: number): void {
    const at = index * this.g.l2EntryBytes;
    this.dv.setUint32(at, 0);
    if (this.g.extendedL2) {
      this.dv.setUint32(at + 4, 0);
      this.dv.setUint32(at + 8, 0xffffffff);
      this.dv.setUint32(at + 12, 0);
    } else this.dv.setUint32(at + 4, 1);
    this.used++;
  }

  /** A compressed cluster whose payload is `length` bytes at byte `offset` (never COPIED; bitmap 0). */
  setCompressed(index: number, offset: number, length: number): void {
    const at = index * this.g.l2EntryBytes;
    const d = compressedDescriptor(offset, length, this.g);
    this.dv.setUint32(at, d.hi);
    this.dv.setUint32(at + 4, d.lo);
    this.used++;
  }
}
