/**
 * Hand-built VHDX for what qemu-img cannot write: differencing children (parent locator, sector
 * bitmaps, PARTIALLY_PRESENT blocks) and images with a pending log. Built from the spec's
 * records (src/formats/vhdx/layout.ts, plan.ts) so the reader is tested against the spec's
 * layout, and the log case against qemu-img's own replay.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32c } from '../../src/formats/shared/crc32c.js';
import { formatUuid, randomUuid } from '../../src/formats/shared/uuid.js';
import {
  CHECKSUM_AT,
  HEADER_OFFSETS,
  LOG_DATA_DESCRIPTOR,
  LOG_ENTRY_HEADER,
  LOG_SECTOR,
  LOG_ZERO_DESCRIPTOR,
  MiB,
  PayloadState,
  SB_BLOCK_PRESENT,
  VHDX_HEADER,
  bitmapIndex,
  payloadIndex,
} from '../../src/formats/vhdx/layout.js';
import { serializeParentLocator } from '../../src/formats/vhdx/parent-locator.js';
import { headBytes, metadataBytes, newIdentity, planVhdx, setBatEntry } from '../../src/formats/vhdx/plan.js';

export interface ChildBlock {
  block: number;
  kind: 'full' | 'partial' | 'zero';
  /** For full/partial: the block's bytes (partial: only sectors set in `sectors` count). */
  data?: Uint8Array;
  /** For partial: the logical sectors of the block present in the child. */
  sectors?: number[];
}

/** The DataWriteGuid of the current header of a VHDX file, as text. */
export function dataWriteGuidOf(path: string): string {
  const buf = readFileSync(path);
  const headers = HEADER_OFFSETS.map((at) => VHDX_HEADER.parse(buf, {}, at));
  const cur = headers[0].sequenceNumber >= headers[1].sequenceNumber ? headers[0] : headers[1];
  return formatUuid(cur.dataWriteGuid, 'guid');
}

export function buildChild(path: string, opts: { virtualSize: number; blockSize: number; logicalSectorSize?: number; locator: Array<[string, string]>; blocks: ChildBlock[] }): void {
  const lss = opts.logicalSectorSize ?? 512;
  const plan = planVhdx({ virtualSize: opts.virtualSize, blockSize: opts.blockSize, logicalSectorSize: lss, logSize: MiB, fixed: false, hasParent: true });
  const id = newIdentity();
  const dataBlocks = opts.blocks.filter((b) => b.kind !== 'zero');
  const chunks = Math.ceil(plan.blocks / plan.chunkRatio);
  const sbStart = plan.dataOffset;
  const payloadStart = sbStart + chunks * MiB;
  const size = payloadStart + dataBlocks.length * plan.blockSize;
  const out = new Uint8Array(size);
  out.set(headBytes(plan, id), 0);
  out.set(metadataBytes(plan, id, serializeParentLocator(opts.locator)), plan.metadataOffset);
  const dv = new DataView(out.buffer);
  for (let c = 0; c < chunks; c++) setBatEntry(dv, plan.batOffset + bitmapIndex(c, plan.chunkRatio) * 8, SB_BLOCK_PRESENT, sbStart + c * MiB);
  const sectorsPerBlock = plan.blockSize / lss;
  let slot = 0;
  for (const b of opts.blocks) {
    const at = plan.batOffset + payloadIndex(b.block, plan.chunkRatio) * 8;
    if (b.kind === 'zero') {
      setBatEntry(dv, at, PayloadState.zero, 0);
      continue;
    }
    const host = payloadStart + slot++ * plan.blockSize;
    setBatEntry(dv, at, b.kind === 'full' ? PayloadState.fullyPresent : PayloadState.partiallyPresent, host);
    out.set(b.data!, host);
    if (b.kind === 'partial') {
      const chunk = Math.floor(b.block / plan.chunkRatio);
      const bitBase = (b.block % plan.chunkRatio) * sectorsPerBlock;
      for (const s of b.sectors!) {
        const bit = bitBase + s;
        out[sbStart + chunk * MiB + (bit >>> 3)] |= 1 << (bit & 7);
      }
    }
  }
  writeFileSync(path, out);
}

export type LogOp = { fileOffset: number; data: Uint8Array } | { fileOffset: number; zeroLength: number };

/**
 * Writes one log entry with `ops` into the log of the VHDX at `path` and points the current
 * header at it (a new LogGuid, the next sequence number): the state a host leaves when it stops
 * after logging metadata and before applying it.
 */
export function addPendingLog(path: string, ops: LogOp[], opts: { sequence?: bigint; lastFileOffset?: number } = {}): void {
  const buf = new Uint8Array(readFileSync(path));
  const headers = HEADER_OFFSETS.map((at) => VHDX_HEADER.parse(buf, {}, at));
  const curIndex = headers[0].sequenceNumber >= headers[1].sequenceNumber ? 0 : 1;
  const cur = headers[curIndex];
  const logGuid = randomUuid('guid');
  const seq = opts.sequence ?? 5n;
  const descSectors = Math.ceil((64 + 32 * ops.length) / LOG_SECTOR);
  const dataOps = ops.filter((o): o is { fileOffset: number; data: Uint8Array } => 'data' in o);
  const entryLength = (descSectors + dataOps.length) * LOG_SECTOR;
  const entry = new Uint8Array(entryLength);
  LOG_ENTRY_HEADER.serialize(
    {
      signature: 'loge',
      checksum: 0,
      entryLength,
      tail: 0,
      sequenceNumber: seq,
      descriptorCount: ops.length,
      reserved: 0,
      logGuid,
      flushedFileOffset: buf.length,
      lastFileOffset: opts.lastFileOffset ?? buf.length,
    },
    entry,
  );
  let dataSector = descSectors;
  ops.forEach((o, i) => {
    const at = 64 + i * 32;
    if ('zeroLength' in o) {
      LOG_ZERO_DESCRIPTOR.serialize({ signature: 'zero', reserved: 0, zeroLength: o.zeroLength, fileOffset: o.fileOffset, sequenceNumber: seq }, entry, at);
    } else {
      LOG_DATA_DESCRIPTOR.serialize(
        { signature: 'desc', trailingBytes: o.data.subarray(4092, 4096), leadingBytes: o.data.subarray(0, 8), fileOffset: o.fileOffset, sequenceNumber: seq },
        entry,
        at,
      );
      const s = dataSector++ * LOG_SECTOR;
      const dv = new DataView(entry.buffer, s, LOG_SECTOR);
      entry.set([0x64, 0x61, 0x74, 0x61], s); // "data"
      dv.setUint32(4, Number(seq >> 32n), true);
      entry.set(o.data.subarray(8, 4092), s + 8);
      dv.setUint32(4092, Number(seq & 0xffffffffn), true);
    }
  });
  new DataView(entry.buffer).setUint32(CHECKSUM_AT, crc32c(entry, CHECKSUM_AT), true);
  buf.set(entry, cur.logOffset);
  // The new header goes in the other slot with a higher sequence number, as a host writes it.
  const other = 1 - curIndex;
  const h = new Uint8Array(4096);
  h.set(buf.subarray(HEADER_OFFSETS[curIndex], HEADER_OFFSETS[curIndex] + 4096));
  VHDX_HEADER.serialize({ ...cur, checksum: 0, sequenceNumber: cur.sequenceNumber + 1n, logGuid }, h);
  new DataView(h.buffer).setUint32(CHECKSUM_AT, crc32c(h, CHECKSUM_AT), true);
  buf.set(h, HEADER_OFFSETS[other]);
  writeFileSync(path, buf);
}
