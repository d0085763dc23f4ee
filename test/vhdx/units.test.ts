/** VHDX pieces alone: CRC-32C, the BAT arithmetic of the spec, the log search, the parent locator. */
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/formats/shared/crc32c.js';
import { randomUuid } from '../../src/formats/shared/uuid.js';
import { batEntries, bitmapIndex, chunkRatio, CHECKSUM_AT, LOG_ENTRY_HEADER, LOG_ZERO_DESCRIPTOR, payloadIndex } from '../../src/formats/vhdx/layout.js';
import { findLogSequence } from '../../src/formats/vhdx/log.js';
import { parseParentLocator, serializeParentLocator } from '../../src/formats/vhdx/parent-locator.js';
import { CorruptImageError } from '../../src/errors.js';

const MiB = 1024 * 1024;

describe('CRC-32C', () => {
  it('matches the Castagnoli check value and skips the checksum field', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    const a = new Uint8Array(16).fill(7);
    const b = a.slice();
    b.fill(0xff, 4, 8);
    expect(crc32c(a, 4)).toBe(crc32c(b, 4));
  });
});

describe('BAT arithmetic (MS-VHDX 2.5)', () => {
  it('interleaves one sector bitmap entry after every chunk', () => {
    expect(chunkRatio(512, 32 * MiB)).toBe(128);
    expect(chunkRatio(4096, MiB)).toBe(32768);
    // 10 GiB in 32 MiB blocks: 320 payload entries and two bitmap entries between them (the Hyper-V sample has 322).
    expect(batEntries(10 * 1024 * MiB, 32 * MiB, 512, false)).toBe(322);
    expect(payloadIndex(128, 128)).toBe(129);
    expect(bitmapIndex(0, 128)).toBe(128);
    // A differencing disk has the last chunk's bitmap entry too.
    expect(batEntries(10 * 1024 * MiB, 32 * MiB, 512, true)).toBe(3 * 129);
  });
});

function logEntry(guid: Uint8Array, seq: bigint, zeroAt: number): Uint8Array {
  const e = new Uint8Array(4096);
  LOG_ENTRY_HEADER.serialize({ signature: 'loge', checksum: 0, entryLength: 4096, tail: 0, sequenceNumber: seq, descriptorCount: 1, reserved: 0, logGuid: guid, flushedFileOffset: 0, lastFileOffset: 8 * MiB }, e);
  LOG_ZERO_DESCRIPTOR.serialize({ signature: 'zero', reserved: 0, zeroLength: 4096, fileOffset: zeroAt, sequenceNumber: seq }, e, 64);
  new DataView(e.buffer).setUint32(CHECKSUM_AT, crc32c(e, CHECKSUM_AT), true);
  return e;
}

describe('log search', () => {
  it('finds the sequence with the highest sequence number; ignores other GUIDs and bad CRCs', () => {
    const guid = randomUuid('guid');
    const log = new Uint8Array(MiB);
    log.set(logEntry(guid, 10n, 2 * MiB), 0);
    log.set(logEntry(guid, 11n, 3 * MiB), 4096);
    log.set(logEntry(guid, 3n, 4 * MiB), 8 * 4096);
    log.set(logEntry(randomUuid('guid'), 50n, 5 * MiB), 16 * 4096);
    const bad = logEntry(guid, 60n, 6 * MiB);
    bad[100] ^= 1;
    log.set(bad, 20 * 4096);
    const r = findLogSequence(log, guid)!;
    expect(r.entries).toBe(2);
    expect(r.headSequence).toBe(11n);
    expect(r.writes.map((w) => w.fileOffset)).toEqual([2 * MiB, 3 * MiB]);
    expect(r.lastFileOffset).toBe(8 * MiB);
    expect(findLogSequence(new Uint8Array(MiB), guid)).toBeUndefined();
  });
});

describe('parent locator', () => {
  it('round-trips its keys and requires a parent_linkage GUID', () => {
    const loc = parseParentLocator(serializeParentLocator([['parent_linkage', '{01234567-89ab-cdef-0123-456789abcdef}'], ['relative_path', '..\\p.vhdx']]), 'x', 0);
    expect(loc.entries.get('relative_path')).toBe('..\\p.vhdx');
    expect(() => parseParentLocator(serializeParentLocator([['relative_path', 'p.vhdx']]), 'x', 0)).toThrow(CorruptImageError);
  });
});
