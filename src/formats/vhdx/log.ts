/**
 * Reading a VHDX log as if it had been replayed (MS-VHDX 2.3): the active sequence is found the way
 * QEMU's vhdx_log_search finds it (block/vhdx-log.c) and its writes are collected into an overlay
 * that patches reads of the file in memory. The file itself is never written: a read-only open of
 * an evidence disk or of a source that crashed works, and reads what `qemu-img check -r all` would
 * leave on a copy.
 */
import { CorruptImageError, LimitExceededError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { crc32c } from '../shared/crc32c.js';
import { uuidEqual } from '../shared/uuid.js';
import {
  CHECKSUM_AT,
  LOG_DATA_DESC_SIGNATURE,
  LOG_DATA_DESCRIPTOR,
  LOG_DATA_SECTOR,
  LOG_DATA_SIGNATURE,
  LOG_DESCRIPTOR_SIZE,
  LOG_ENTRY_HEADER,
  LOG_ENTRY_SIGNATURE,
  LOG_SECTOR,
  LOG_ZERO_DESCRIPTOR,
  LOG_ZERO_SIGNATURE,
  type LogEntryHeader,
  type VhdxHeader,
} from './layout.js';

/** The log is read whole into memory to search it: Hyper-V makes 1 MiB logs; 64 MiB is generous. */
export const MAX_LOG_LENGTH = 64 * 1024 * 1024;
/** Sectors one replay may change (zero descriptors can cover many): 2^20 sectors = 4 GiB. */
export const MAX_REPLAY_SECTORS = 1 << 20;

/** One write of the replayed log: 4 KiB of data, or zeros (`data` undefined). */
export interface LogWrite {
  fileOffset: number;
  length: number;
  data?: Uint8Array;
}

export interface LogReplay {
  /** Writes in the order the log makes them. */
  writes: LogWrite[];
  /** The file length after replay (the largest LastFileOffset of the sequence). */
  lastFileOffset: number;
  entries: number;
  headSequence: bigint;
}

interface Entry {
  header: LogEntryHeader;
  writes: LogWrite[];
}

/** The entry at `at` of the circular log, or undefined when it is not a valid entry (for `expected`). */
function readEntry(log: Uint8Array, at: number, logGuid: Uint8Array, expected: bigint | undefined): Entry | undefined {
  const len = log.length;
  const sector = (i: number): Uint8Array => {
    const o = (at + i * LOG_SECTOR) % len;
    return log.subarray(o, o + LOG_SECTOR);
  };
  let h: LogEntryHeader;
  try {
    h = LOG_ENTRY_HEADER.parse(sector(0));
  } catch {
    return undefined;
  }
  if (h.signature !== LOG_ENTRY_SIGNATURE) return undefined;
  if (h.entryLength === 0 || h.entryLength % LOG_SECTOR !== 0 || h.entryLength > len) return undefined;
  if (h.sequenceNumber === 0n || (expected !== undefined && h.sequenceNumber !== expected)) return undefined;
  if (!uuidEqual(h.logGuid, logGuid)) return undefined;
  const sectors = h.entryLength / LOG_SECTOR;
  const descSectors = Math.ceil((LOG_ENTRY_HEADER.size + h.descriptorCount * LOG_DESCRIPTOR_SIZE) / LOG_SECTOR);
  if (descSectors > sectors) return undefined;
  // The checksum covers the whole entry, which may wrap around the end of the log.
  const whole = new Uint8Array(h.entryLength);
  for (let i = 0; i < sectors; i++) whole.set(sector(i), i * LOG_SECTOR);
  if (crc32c(whole, CHECKSUM_AT) !== h.checksum) return undefined;
  const writes: LogWrite[] = [];
  let dataSector = descSectors;
  const seqHigh = Number(h.sequenceNumber >> 32n);
  const seqLow = Number(h.sequenceNumber & 0xffffffffn);
  for (let d = 0; d < h.descriptorCount; d++) {
    const at = LOG_ENTRY_HEADER.size + d * LOG_DESCRIPTOR_SIZE;
    try {
      const sig = String.fromCharCode(...whole.subarray(at, at + 4));
      if (sig === LOG_ZERO_SIGNATURE) {
        const z = LOG_ZERO_DESCRIPTOR.parse(whole, {}, at);
        if (z.sequenceNumber !== h.sequenceNumber || z.zeroLength % LOG_SECTOR !== 0 || z.fileOffset % LOG_SECTOR !== 0) return undefined;
        writes.push({ fileOffset: z.fileOffset, length: z.zeroLength });
      } else if (sig === LOG_DATA_DESC_SIGNATURE) {
        const x = LOG_DATA_DESCRIPTOR.parse(whole, {}, at);
        if (x.sequenceNumber !== h.sequenceNumber || x.fileOffset % LOG_SECTOR !== 0 || dataSector >= sectors) return undefined;
        const ds = LOG_DATA_SECTOR.parse(whole, {}, dataSector * LOG_SECTOR);
        if (ds.signature !== LOG_DATA_SIGNATURE || ds.sequenceHigh !== seqHigh || ds.sequenceLow !== seqLow) return undefined;
        // The sector's own first 8 and last 4 bytes hold the signature and sequence: the real bytes are in the descriptor.
        const data = new Uint8Array(LOG_SECTOR);
        data.set(x.leadingBytes, 0);
        data.set(ds.data, 8);
        data.set(x.trailingBytes, LOG_SECTOR - 4);
        writes.push({ fileOffset: x.fileOffset, length: LOG_SECTOR, data });
        dataSector++;
      } else {
        return undefined;
      }
    } catch {
      return undefined;
    }
  }
  return { header: h, writes };
}

/**
 * The active sequence, or undefined when the log holds none. As QEMU: from every sector, follow
 * entries with consecutive sequence numbers; the sequence whose last entry has the highest
 * sequence number wins (the first found among equals).
 */
export function findLogSequence(log: Uint8Array, logGuid: Uint8Array): LogReplay | undefined {
  let best: { entries: Entry[]; head: bigint } | undefined;
  for (let start = 0; start < log.length; start += LOG_SECTOR) {
    const first = readEntry(log, start, logGuid, undefined);
    if (!first) continue;
    const entries = [first];
    let at = (start + first.header.entryLength) % log.length;
    let seq = first.header.sequenceNumber;
    // A sequence cannot hold more entries than the log has sectors; the bound also stops a wrap onto itself.
    while (entries.length < log.length / LOG_SECTOR) {
      const next = readEntry(log, at, logGuid, seq + 1n);
      if (!next) break;
      entries.push(next);
      seq = next.header.sequenceNumber;
      at = (at + next.header.entryLength) % log.length;
    }
    if (!best || seq > best.head) best = { entries, head: seq };
  }
  if (!best) return undefined;
  const writes: LogWrite[] = [];
  let lastFileOffset = 0;
  let sectors = 0;
  for (const e of best.entries) {
    lastFileOffset = Math.max(lastFileOffset, e.header.lastFileOffset);
    for (const w of e.writes) {
      sectors += w.length / LOG_SECTOR;
      writes.push(w);
    }
  }
  if (sectors > MAX_REPLAY_SECTORS) {
    throw new LimitExceededError(`the log replays ${sectors} sectors, more than the ${MAX_REPLAY_SECTORS} we hold in memory`, { field: 'log' });
  }
  return { writes, lastFileOffset, entries: best.entries.length, headSequence: best.head };
}

/** Reads the log a header names and finds its active sequence (none when the LogGuid is zero). */
export async function readLog(source: ByteSource, header: VhdxHeader, headerOffset: number, file: string, fileSize: number): Promise<LogReplay | undefined> {
  if (header.logGuid.every((b) => b === 0)) return undefined;
  const where = { file, field: 'LogLength', offset: headerOffset + LOG_ENTRY_HEADER.size };
  if (header.logLength > MAX_LOG_LENGTH) throw new LimitExceededError(`log length ${header.logLength} is larger than the ${MAX_LOG_LENGTH} we read`, where);
  if (header.logLength === 0 || header.logLength % (1024 * 1024) !== 0 || header.logOffset % (1024 * 1024) !== 0) {
    throw new CorruptImageError(`log of ${header.logLength} bytes at ${header.logOffset} is not 1 MiB aligned`, where);
  }
  if (header.logOffset + header.logLength > fileSize) {
    throw new CorruptImageError(`log (${header.logLength} bytes at ${header.logOffset}) lies past the end of the ${fileSize}-byte file`, where);
  }
  const log = await source.read(header.logOffset, header.logLength);
  try {
    return findLogSequence(log, header.logGuid);
  } catch (e) {
    if (e instanceof LimitExceededError) throw new LimitExceededError(e.detail, { file, field: 'log', offset: header.logOffset });
    throw e;
  }
}
