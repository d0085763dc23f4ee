/**
 * Reference counts (spec "Host cluster management"; QEMU qcow2-refcount.c).
 *
 * A refcount block is one cluster of `cluster_size × 8 / refcount_bits` entries. Entries of 8 bits
 * or more are big-endian integers; narrower ones are packed with entry 0 in the least significant
 * bits of byte 0 (refcount_bits = 1, clusters 0–3 in use ⇒ first byte 0x0F; docs/FORMATS.md §2.4).
 * Refcount structures count themselves, so their size is a fixed point (qcow2_refcount_metadata_size).
 */
import type { ByteSource } from '../../stream/source.js';
import { ceilDiv } from '../shared/bounds.js';
import type { Qcow2Header } from './header.js';

export interface RefcountGeometry {
  clusterSize: number;
  refcountBits: number;
  /** Entries per refcount block. */
  entriesPerBlock: number;
  /** Largest storable refcount, capped at 2^53 − 1 for 64-bit entries (no image gets there). */
  max: number;
}

export function refcountGeometry(clusterBits: number, refcountOrder: number): RefcountGeometry {
  const clusterSize = 2 ** clusterBits;
  const refcountBits = 2 ** refcountOrder;
  return {
    clusterSize,
    refcountBits,
    entriesPerBlock: (clusterSize * 8) / refcountBits,
    max: refcountBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** refcountBits - 1,
  };
}

/** Reads entry `i` of a refcount block. 64-bit values above 2^53 come back rounded (only `check` reads them, to compare). */
export function getRefcount(block: Uint8Array, i: number, bits: number): number {
  switch (bits) {
    case 8:
      return block[i];
    case 16:
      return (block[2 * i] << 8) | block[2 * i + 1];
    case 32:
      return ((block[4 * i] << 24) | (block[4 * i + 1] << 16) | (block[4 * i + 2] << 8) | block[4 * i + 3]) >>> 0;
    case 64: {
      const at = 8 * i;
      const hi = ((block[at] << 24) | (block[at + 1] << 16) | (block[at + 2] << 8) | block[at + 3]) >>> 0;
      const lo = ((block[at + 4] << 24) | (block[at + 5] << 16) | (block[at + 6] << 8) | block[at + 7]) >>> 0;
      return hi * 0x1_0000_0000 + lo;
    }
    default: {
      // 1, 2 or 4 bits: entry 0 in the least significant bits of byte 0.
      const bit = i * bits;
      return (block[bit >>> 3] >>> (bit & 7)) & ((1 << bits) - 1);
    }
  }
}

/** Exact 64-bit value of entry `i`, for messages. */
export function getRefcountExact(block: Uint8Array, i: number, bits: number): bigint {
  if (bits !== 64) return BigInt(getRefcount(block, i, bits));
  let v = 0n;
  for (let k = 0; k < 8; k++) v = (v << 8n) | BigInt(block[8 * i + k]);
  return v;
}

/** Writes entry `i` (value already known to fit). */
export function setRefcount(block: Uint8Array, i: number, bits: number, value: number): void {
  switch (bits) {
    case 8:
      block[i] = value;
      return;
    case 16:
      block[2 * i] = value >>> 8;
      block[2 * i + 1] = value & 0xff;
      return;
    case 32:
      block[4 * i] = value >>> 24;
      block[4 * i + 1] = (value >>> 16) & 0xff;
      block[4 * i + 2] = (value >>> 8) & 0xff;
      block[4 * i + 3] = value & 0xff;
      return;
    case 64: {
      const hi = Math.floor(value / 0x1_0000_0000);
      const lo = value >>> 0;
      const at = 8 * i;
      block[at] = hi >>> 24;
      block[at + 1] = (hi >>> 16) & 0xff;
      block[at + 2] = (hi >>> 8) & 0xff;
      block[at + 3] = hi & 0xff;
      block[at + 4] = lo >>> 24;
      block[at + 5] = (lo >>> 16) & 0xff;
      block[at + 6] = (lo >>> 8) & 0xff;
      block[at + 7] = lo & 0xff;
      return;
    }
    default: {
      const bit = i * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      block[bit >>> 3] = (block[bit >>> 3] & ~mask) | ((value << (bit & 7)) & mask);
    }
  }
}

/**
 * Refcount blocks and table clusters needed when `used` other clusters are in use: blocks must
 * cover every cluster including themselves and the table (docs/FORMATS.md §2.11).
 */
export function refcountMetadataSize(used: number, rg: RefcountGeometry): { blocks: number; tableClusters: number } {
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const nb = ceilDiv(used + blocks + tableClusters, rg.entriesPerBlock);
    const nt = ceilDiv(nb * 8, rg.clusterSize);
    if (nb === blocks && nt === tableClusters) return { blocks, tableClusters };
    blocks = nb;
    tableClusters = nt;
  }
}

/**
 * Refcounts of the host clusters a writer has used, when they are not all 1 (compressed clusters
 * share host clusters). Two bytes per host cluster, in 64 Ki-entry chunks, so memory follows the
 * size of the output, never the virtual size. Values are capped by the writer at the refcount
 * maximum, at most 2^16 − 1 here: a host cluster holds at most cluster_size / 2 payloads of ≥ 2 bytes,
 * and the writer never lets a cluster exceed 65535 users.
 */
export class HostRefcounts {
  static readonly CAP = 0xffff;
  private readonly chunks: Uint16Array[] = [];

  get(cluster: number): number {
    const c = this.chunks[cluster >>> 16];
    return c ? c[cluster & 0xffff] : 0;
  }

  add(cluster: number, n = 1): void {
    let c = this.chunks[cluster >>> 16];
    if (!c) c = this.chunks[cluster >>> 16] = new Uint16Array(0x10000);
    c[cluster & 0xffff] += n;
  }
}

/**
 * The stored refcount table as big-endian entries: the part inside the file (entries past EOF read
 * as 0, as QEMU reads them). `entries` is what the header sizes the table to.
 */
export async function readStoredRefcountTable(source: ByteSource, fileSize: number, h: Qcow2Header): Promise<{ table: DataView; inFile: number; entries: number }> {
  const entries = (h.refcountTableClusters * h.geometry.clusterSize) / 8;
  const inFile = Math.max(0, Math.min(entries, Math.floor((fileSize - h.refcountTableOffset) / 8)));
  const buf = new Uint8Array(inFile * 8);
  if (inFile) await source.read(h.refcountTableOffset, buf.length, buf);
  return { table: new DataView(buf.buffer), inFile, entries };
}
