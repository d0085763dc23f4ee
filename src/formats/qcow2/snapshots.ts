/**
 * The internal snapshot table (spec "Snapshots"; QEMU qcow2-snapshot.c qcow2_do_read_snapshots).
 * Parsed for `info` and `check` only: reading the active disk never needs it. Bounded as QEMU
 * bounds it — 65,536 entries, 1 KiB of extra data each, 64 MiB in all — and read through a window
 * with zeros past EOF, so a crafted table that claims 65,536 entries over a tiny file parses the
 * way QEMU parses it, in milliseconds.
 */
import { LimitExceededError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import type { SnapshotInfo } from '../types.js';
import { TableCursor } from './cursor.js';
import { MAX_SNAPSHOTS_BYTES, MAX_SNAPSHOT_EXTRA_DATA, SNAPSHOT_EXTRA, SNAPSHOT_HEADER } from './layout.js';

export interface SnapshotRecord {
  index: number;
  /** Where the entry starts in the file. */
  entryOffset: number;
  /** Raw 64-bit value: a corrupt table may hold anything, and `check` reports it as stored. */
  l1TableOffset: bigint;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  /** The 64-bit VM state size from the extra data when present, else the 32-bit field. */
  vmStateSize: bigint;
  extraDataSize: number;
  /** Virtual disk size when the snapshot was taken (extra data), when recorded. */
  diskSize?: bigint;
  /** Instruction count (extra data), when recorded; all-ones means "not used". */
  icount?: bigint;
}

export interface SnapshotTable {
  entries: SnapshotRecord[];
  /** Bytes the table occupies (QEMU's snapshots_size): entries padded to 8. */
  length: number;
  /** The table runs past the end of the file (read as zeros there, as QEMU does). */
  beyondEof: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const cString = (b: Uint8Array): string => {
  const nul = b.indexOf(0);
  return utf8.decode(nul < 0 ? b : b.subarray(0, nul));
};
const ALL_ONES = (1n << 64n) - 1n;

/** Reads `count` entries at `offset`. Throws where QEMU's open fails (oversized extra data or table). */
export async function readSnapshotTable(source: ByteSource, offset: number, count: number, file: string): Promise<SnapshotTable> {
  const entries: SnapshotRecord[] = [];
  if (count === 0) return { entries, length: 0, beyondEof: false };
  const cursor = new TableCursor(source, source.size ?? Number.MAX_SAFE_INTEGER);
  let pos = offset;
  for (let i = 0; i < count; i++) {
    pos = Math.ceil(pos / 8) * 8;
    const entryOffset = pos;
    const h = SNAPSHOT_HEADER.parse(await cursor.read(pos, SNAPSHOT_HEADER.size), { file, base: pos });
    pos += SNAPSHOT_HEADER.size;
    if (h.extraDataSize > MAX_SNAPSHOT_EXTRA_DATA) {
      throw new LimitExceededError(`too much extra metadata in snapshot table entry ${i}: ${h.extraDataSize} bytes (limit ${MAX_SNAPSHOT_EXTRA_DATA})`, {
        file,
        field: 'snapshot extra_data_size',
        offset: entryOffset + SNAPSHOT_HEADER.offsetOf('extraDataSize'),
      });
    }
    const known = Math.min(SNAPSHOT_EXTRA.size, h.extraDataSize);
    const extraBytes = new Uint8Array(SNAPSHOT_EXTRA.size);
    extraBytes.set(await cursor.read(pos, known));
    const extra = SNAPSHOT_EXTRA.parse(extraBytes, { file, base: pos });
    pos += h.extraDataSize;
    // QEMU keeps both as C strings: a NUL ends them.
    const id = cString(await cursor.read(pos, h.idStrSize));
    pos += h.idStrSize;
    const name = cString(await cursor.read(pos, h.nameSize));
    pos += h.nameSize;
    entries.push({
      index: i,
      entryOffset,
      l1TableOffset: h.l1TableOffset,
      l1Size: h.l1Size,
      id,
      name,
      dateSec: h.dateSec,
      dateNsec: h.dateNsec,
      vmClockNsec: h.vmClockNsec,
      vmStateSize: h.extraDataSize >= 8 ? extra.vmStateSizeLarge : BigInt(h.vmStateSize),
      extraDataSize: h.extraDataSize,
      ...(h.extraDataSize >= 16 ? { diskSize: extra.diskSize } : {}),
      ...(h.extraDataSize >= 24 ? { icount: extra.icount } : {}),
    });
    // qcow2_do_read_snapshots: the table, names included, stays within 64 MiB.
    if (pos - offset > MAX_SNAPSHOTS_BYTES) {
      throw new LimitExceededError(`snapshot table too large: more than ${MAX_SNAPSHOTS_BYTES} bytes by entry ${i}`, {
        file,
        field: 'snapshot table',
        offset,
      });
    }
  }
  return { entries, length: Math.ceil((pos - offset) / 8) * 8, beyondEof: cursor.beyondEof };
}

/** The info view of a snapshot, in qemu-img's terms. */
export function snapshotInfo(s: SnapshotRecord): SnapshotInfo {
  return {
    id: s.id,
    name: s.name,
    vmStateSize: Number(s.vmStateSize),
    dateSec: s.dateSec,
    dateNsec: s.dateNsec,
    vmClockNsec: Number(s.vmClockNsec),
    ...(s.icount !== undefined && s.icount !== ALL_ONES ? { icount: Number(s.icount) } : {}),
  };
}

/** Cluster-aligned, bounded L1 offset of a snapshot, or a message saying why not (for check). */
export function snapshotL1Problem(s: SnapshotRecord, clusterSize: number, maxL1Entries: number): string | undefined {
  if (s.l1TableOffset % BigInt(clusterSize) !== 0n) {
    return `ERROR snapshot ${s.id} (${s.name}) l1_offset=0x${s.l1TableOffset.toString(16)}: L1 table is not cluster aligned; snapshot table entry corrupted`;
  }
  if (s.l1Size > maxL1Entries) {
    return `ERROR snapshot ${s.id} (${s.name}) l1_size=0x${s.l1Size.toString(16)}: L1 table is too large; snapshot table entry corrupted`;
  }
  return undefined;
}

