/**
 * The records a new VHD starts with, and where everything goes in a new dynamic disk. Pure
 * functions: the plan is computed before the first byte is written (docs/ARCHITECTURE.md
 * example 9), so a dynamic disk can be streamed to a pipe.
 */
import { ceilDiv, roundUp } from '../shared/bounds.js';
import { NO_SLOT } from '../shared/block-slots.js';
import {
  BAT_UNUSED,
  DYNAMIC_COOKIE,
  DYNAMIC_HEADER,
  DYNAMIC_HEADER_CHECKSUM_AT,
  DYNAMIC_HEADER_SIZE,
  DYNAMIC_HEADER_VERSION,
  DiskType,
  FEATURE_RESERVED,
  FOOTER,
  FOOTER_SIZE,
  FORMAT_VERSION,
  HOST_WINDOWS,
  NO_DATA_OFFSET,
  SECTOR,
  VHD_COOKIE,
  VHD_EPOCH_UNIX,
  bitmapSizeFor,
  fourcc,
  sealChecksum,
} from './layout.js';
import type { CreateGeometry } from './geometry.js';

/**
 * Creator fields as qemu-img writes them (vpc_co_create). Readers pick the size rule by creator
 * application (see geometry.ts): "qemu" makes qemu and Virtual PC size the disk by CHS, which our
 * rounded-up size matches exactly; "qem2" (force_size) makes qemu use current_size, as Hyper-V
 * always does. Writing the same codes keeps every reader's answer the same as for qemu's images.
 */
export const CREATOR_CHS = fourcc('qemu');
export const CREATOR_CURRENT_SIZE = fourcc('qem2');
/** Virtual PC 2007's version (5.3), as qemu writes. */
export const CREATOR_VERSION = 0x0005_0003;

export interface NewFooter {
  geometry: CreateGeometry;
  type: 'fixed' | 'dynamic';
  forceSize: boolean;
  uniqueId: Uint8Array;
  /** Unix seconds. */
  createdAt: number;
}

export function footerBytes(n: NewFooter): Uint8Array {
  const buf = FOOTER.serialize({
    cookie: VHD_COOKIE,
    features: FEATURE_RESERVED,
    formatVersion: FORMAT_VERSION,
    // The dynamic header directly follows the footer copy at offset 0.
    dataOffset: n.type === 'fixed' ? NO_DATA_OFFSET : BigInt(FOOTER_SIZE),
    timestamp: Math.max(0, n.createdAt - VHD_EPOCH_UNIX) >>> 0,
    creatorApp: n.forceSize ? CREATOR_CURRENT_SIZE : CREATOR_CHS,
    creatorVersion: CREATOR_VERSION,
    creatorHostOs: HOST_WINDOWS,
    originalSize: n.geometry.size,
    currentSize: n.geometry.size,
    cylinders: n.geometry.cylinders,
    heads: n.geometry.heads,
    sectorsPerTrack: n.geometry.sectorsPerTrack,
    diskType: DiskType[n.type],
    checksum: 0,
    uniqueId: n.uniqueId,
    savedState: 0,
  });
  return sealChecksum(buf);
}

/** Where a new dynamic disk puts things (qemu's layout: docs/FORMATS.md §4.4). */
export interface DynamicPlan {
  blockSize: number;
  bitmapSize: number;
  /** Blocks of the virtual disk = BAT entries. */
  entries: number;
  /** The dynamic header follows the footer copy; the BAT follows the header. */
  headerOffset: number;
  tableOffset: number;
  /** BAT bytes, padded to a sector. */
  tableBytes: number;
  /** First block. */
  dataStart: number;
  /** Bitmap + data of one block. */
  blockStride: number;
}

export function planDynamic(virtualSize: number, blockSize: number): DynamicPlan {
  const entries = ceilDiv(virtualSize, blockSize);
  const headerOffset = FOOTER_SIZE;
  const tableOffset = headerOffset + DYNAMIC_HEADER_SIZE;
  const tableBytes = roundUp(entries * 4, SECTOR);
  const bitmapSize = bitmapSizeFor(blockSize);
  return { blockSize, bitmapSize, entries, headerOffset, tableOffset, tableBytes, dataStart: tableOffset + tableBytes, blockStride: bitmapSize + blockSize };
}

/** Byte offset of the block stored in `slot` (its bitmap comes first). */
export const slotOffset = (p: DynamicPlan, slot: number): number => p.dataStart + slot * p.blockStride;

export function dynamicHeaderBytes(p: DynamicPlan): Uint8Array {
  const buf = DYNAMIC_HEADER.serialize({
    cookie: DYNAMIC_COOKIE,
    dataOffset: NO_DATA_OFFSET,
    tableOffset: p.tableOffset,
    headerVersion: DYNAMIC_HEADER_VERSION,
    maxTableEntries: p.entries,
    blockSize: p.blockSize,
    checksum: 0,
    parentUuid: new Uint8Array(16),
    parentTimestamp: 0,
    reserved1: 0,
    parentName: new Uint8Array(512),
  });
  return sealChecksum(buf, DYNAMIC_HEADER_CHECKSUM_AT);
}

/** The BAT for the given slots (NO_SLOT → unused), padded with unused entries as qemu does. */
export function batBytes(p: DynamicPlan, slots: Uint32Array): Uint8Array {
  const buf = new Uint8Array(p.tableBytes).fill(0xff);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < p.entries; i++) {
    const s = slots[i];
    dv.setUint32(i * 4, s === NO_SLOT ? BAT_UNUSED : slotOffset(p, s) / SECTOR);
  }
  return buf;
}
