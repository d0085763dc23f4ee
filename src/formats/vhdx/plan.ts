/**
 * The layout of a new VHDX, planned before the first byte (docs/ARCHITECTURE.md example 9), and
 * the bytes of everything in front of the payload. As Hyper-V lays it out: every structure 1 MiB
 * aligned — headers and region tables in the first MiB, then the log, the metadata region, the
 * BAT, and the payload blocks in virtual order. Everything precedes the data, so the image can be
 * written forward-only (to a pipe) once the BAT is known.
 */
import { ceilDiv, roundUp } from '../shared/bounds.js';
import { crc32c } from '../shared/crc32c.js';
import { randomUuid } from '../shared/uuid.js';
import {
  ALIGNMENT,
  CHECKSUM_AT,
  FILE_ID,
  FILE_PARAMETERS,
  FILE_SIGNATURE,
  HEADER_OFFSETS,
  HEADER_SIGNATURE,
  HEADER_SIZE,
  ITEM_FILE_PARAMETERS,
  ITEM_LOGICAL_SECTOR_SIZE,
  ITEM_PAGE83,
  ITEM_PARENT_LOCATOR,
  ITEM_PHYSICAL_SECTOR_SIZE,
  ITEM_VIRTUAL_DISK_SIZE,
  LOG_VERSION,
  METADATA_ENTRY,
  METADATA_IS_REQUIRED,
  METADATA_IS_VIRTUAL_DISK,
  METADATA_SIGNATURE,
  METADATA_TABLE_HEADER,
  MiB,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  REGION_BAT,
  REGION_ENTRY,
  REGION_METADATA,
  REGION_REQUIRED,
  REGION_TABLE_HEADER,
  REGION_TABLE_OFFSETS,
  TABLE_SIZE,
  VHDX_HEADER,
  VHDX_VERSION,
  batEntries,
  chunkRatio,
  payloadIndex,
} from './layout.js';

export interface VhdxPlan {
  virtualSize: number;
  blockSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  fixed: boolean;
  hasParent: boolean;
  blocks: number;
  chunkRatio: number;
  batEntries: number;
  logOffset: number;
  logSize: number;
  metadataOffset: number;
  metadataSize: number;
  batOffset: number;
  batSize: number;
  /** Where payload block slots start. */
  dataOffset: number;
}

export interface PlanInput {
  virtualSize: number;
  blockSize: number;
  logicalSectorSize: number;
  logSize: number;
  fixed: boolean;
  hasParent?: boolean;
}

export function planVhdx(i: PlanInput): VhdxPlan {
  const hasParent = i.hasParent ?? false;
  const blocks = ceilDiv(i.virtualSize, i.blockSize);
  const entries = batEntries(i.virtualSize, i.blockSize, i.logicalSectorSize, hasParent);
  const logOffset = ALIGNMENT;
  const metadataOffset = logOffset + i.logSize;
  const metadataSize = MiB;
  const batOffset = metadataOffset + metadataSize;
  const batSize = Math.max(ALIGNMENT, roundUp(entries * 8, ALIGNMENT));
  return {
    virtualSize: i.virtualSize,
    blockSize: i.blockSize,
    logicalSectorSize: i.logicalSectorSize,
    physicalSectorSize: i.logicalSectorSize === 4096 ? 4096 : 512,
    fixed: i.fixed,
    hasParent,
    blocks,
    chunkRatio: chunkRatio(i.logicalSectorSize, i.blockSize),
    batEntries: entries,
    logOffset,
    logSize: i.logSize,
    metadataOffset,
    metadataSize,
    batOffset,
    batSize,
    dataOffset: batOffset + batSize,
  };
}

export interface Identity {
  fileWriteGuid: Uint8Array;
  dataWriteGuid: Uint8Array;
  page83: Uint8Array;
}

export const newIdentity = (): Identity => ({ fileWriteGuid: randomUuid('guid'), dataWriteGuid: randomUuid('guid'), page83: randomUuid('guid') });

const CREATOR = 'guestkit';

/** The first MiB: file identifier, both headers, both region tables. */
export function headBytes(plan: VhdxPlan, id: Identity, sequence = 1n): Uint8Array {
  const out = new Uint8Array(ALIGNMENT);
  const creator = new Uint8Array(512);
  for (let i = 0; i < CREATOR.length; i++) creator[i * 2] = CREATOR.charCodeAt(i);
  FILE_ID.serialize({ signature: FILE_SIGNATURE, creator }, out, 0);
  HEADER_OFFSETS.forEach((at, k) => out.set(headerBytes(plan, id, sequence + BigInt(k)), at));
  const table = regionTableBytes(plan);
  for (const at of REGION_TABLE_OFFSETS) out.set(table, at);
  return out;
}

/** A 4 KiB header with its CRC-32C; the log GUID is zero: nothing to replay. */
export function headerBytes(plan: Pick<VhdxPlan, 'logOffset' | 'logSize'>, id: Identity, sequence: bigint, logGuid = new Uint8Array(16)): Uint8Array {
  const buf = new Uint8Array(HEADER_SIZE);
  VHDX_HEADER.serialize(
    {
      signature: HEADER_SIGNATURE,
      checksum: 0,
      sequenceNumber: sequence,
      fileWriteGuid: id.fileWriteGuid,
      dataWriteGuid: id.dataWriteGuid,
      logGuid,
      logVersion: LOG_VERSION,
      version: VHDX_VERSION,
      logLength: plan.logSize,
      logOffset: plan.logOffset,
    },
    buf,
  );
  new DataView(buf.buffer).setUint32(CHECKSUM_AT, crc32c(buf, CHECKSUM_AT), true);
  return buf;
}

export function regionTableBytes(plan: Pick<VhdxPlan, 'batOffset' | 'batSize' | 'metadataOffset' | 'metadataSize'>): Uint8Array {
  const buf = new Uint8Array(TABLE_SIZE);
  REGION_TABLE_HEADER.serialize({ signature: 'regi', checksum: 0, entryCount: 2, reserved: 0 }, buf);
  // Hyper-V marks both regions required (a reader that does not know them must refuse the file).
  REGION_ENTRY.serialize({ guid: REGION_BAT, fileOffset: plan.batOffset, length: plan.batSize, flags: REGION_REQUIRED }, buf, 16);
  REGION_ENTRY.serialize({ guid: REGION_METADATA, fileOffset: plan.metadataOffset, length: plan.metadataSize, flags: REGION_REQUIRED }, buf, 48);
  new DataView(buf.buffer).setUint32(CHECKSUM_AT, crc32c(buf, CHECKSUM_AT), true);
  return buf;
}

/** The metadata region's used part: table and items (items from 64 KiB on, as the spec requires). */
export function metadataBytes(plan: VhdxPlan, id: Identity, parentLocator?: Uint8Array): Uint8Array {
  const items: Array<{ guid: Uint8Array; data: Uint8Array; flags: number }> = [];
  const u32 = (v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    return b;
  };
  const params = FILE_PARAMETERS.serialize({
    blockSize: plan.blockSize,
    flags: (plan.fixed ? PARAM_LEAVE_BLOCKS_ALLOCATED : 0) | (plan.hasParent ? PARAM_HAS_PARENT : 0),
  });
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(plan.virtualSize), true);
  const vd = METADATA_IS_VIRTUAL_DISK | METADATA_IS_REQUIRED;
  items.push({ guid: ITEM_FILE_PARAMETERS, data: params, flags: METADATA_IS_REQUIRED });
  items.push({ guid: ITEM_VIRTUAL_DISK_SIZE, data: size, flags: vd });
  items.push({ guid: ITEM_PAGE83, data: id.page83, flags: vd });
  items.push({ guid: ITEM_LOGICAL_SECTOR_SIZE, data: u32(plan.logicalSectorSize), flags: vd });
  items.push({ guid: ITEM_PHYSICAL_SECTOR_SIZE, data: u32(plan.physicalSectorSize), flags: vd });
  if (parentLocator) items.push({ guid: ITEM_PARENT_LOCATOR, data: parentLocator, flags: METADATA_IS_REQUIRED });
  const total = TABLE_SIZE + items.reduce((n, x) => n + x.data.length, 0);
  const buf = new Uint8Array(total);
  METADATA_TABLE_HEADER.serialize({ signature: METADATA_SIGNATURE, reserved: 0, entryCount: items.length }, buf);
  let at = TABLE_SIZE;
  items.forEach((x, k) => {
    METADATA_ENTRY.serialize({ itemId: x.guid, offset: at, length: x.data.length, flags: x.flags, reserved: 0 }, buf, METADATA_TABLE_HEADER.size + k * METADATA_ENTRY.size);
    buf.set(x.data, at);
    at += x.data.length;
  });
  return buf;
}

/** One BAT entry's 8 bytes (state, file offset in MiB), written into `dv` at `at`. */
export function setBatEntry(dv: DataView, at: number, state: number, fileOffset: number): void {
  const mib = fileOffset / MiB;
  dv.setUint32(at, (state | ((mib % 4096) << 20)) >>> 0, true);
  dv.setUint32(at + 4, Math.floor(mib / 4096), true);
}

/**
 * The BAT, produced a piece at a time so a large disk never needs it whole in memory: `payload(i)`
 * gives block i's state and offset; sector bitmap entries stay NOT_PRESENT (0).
 */
export function* batPieces(plan: VhdxPlan, payload: (block: number) => { state: number; fileOffset: number }, pieceEntries = 65536): Generator<{ offset: number; bytes: Uint8Array }> {
  for (let first = 0; first < plan.batEntries; first += pieceEntries) {
    const n = Math.min(pieceEntries, plan.batEntries - first);
    const bytes = new Uint8Array(n * 8);
    const dv = new DataView(bytes.buffer);
    // The payload blocks whose entries fall in this piece.
    const firstBlock = first - Math.floor(first / (plan.chunkRatio + 1));
    for (let b = firstBlock; b < plan.blocks; b++) {
      const idx = payloadIndex(b, plan.chunkRatio);
      if (idx >= first + n) break;
      if (idx < first) continue;
      const e = payload(b);
      if (e.state !== 0) setBatEntry(dv, (idx - first) * 8, e.state, e.fileOffset);
    }
    yield { offset: plan.batOffset + first * 8, bytes };
  }
}
