/**
 * Metadata encoders shared by the two writers (writer.ts for files, pipe-writer.ts for pipes):
 * the header fields a configuration implies, L1 entries and refcount blocks.
 */
import type { HeaderSpec } from './header-write.js';
import { OFLAG_COPIED_HI } from './layout.js';
import type { WriterConfig } from './options.js';
import { setRefcount, type RefcountGeometry } from './refcount.js';

export function headerSpec(cfg: WriterConfig, at: { l1: number; refcountTable: number; refcountTableClusters: number }): HeaderSpec {
  return {
    version: cfg.version,
    clusterBits: cfg.clusterBits,
    size: cfg.virtualSize,
    l1Size: cfg.l1Size,
    l1TableOffset: at.l1,
    refcountTableOffset: at.refcountTable,
    refcountTableClusters: at.refcountTableClusters,
    refcountOrder: cfg.refcountOrder,
    lazyRefcounts: cfg.lazyRefcounts,
    extendedL2: cfg.extendedL2,
    compressionType: cfg.compressionType,
    backingFile: cfg.backingFile,
    backingFormat: cfg.backingFormat,
  };
}

/** Sets L1 entry `index` to an L2 table at `host` with COPIED (its refcount is 1). */
export function setL1(l1: DataView, index: number, host: number): void {
  l1.setUint32(index * 8, (OFLAG_COPIED_HI | Math.floor(host / 0x1_0000_0000)) >>> 0);
  l1.setUint32(index * 8 + 4, host >>> 0);
}

/** Writes refcount block `b` covering clusters [b × entries, (b + 1) × entries) into `block`. */
export function fillRefcountBlock(block: Uint8Array, b: number, rg: RefcountGeometry, total: number, refcount: (c: number) => number): void {
  block.fill(0);
  const first = b * rg.entriesPerBlock;
  const n = Math.min(rg.entriesPerBlock, total - first);
  for (let i = 0; i < n; i++) setRefcount(block, i, rg.refcountBits, refcount(first + i));
}
