/**
 * Finding the footer that describes a VHD. The spec makes the footer at the end of the file
 * authoritative and gives dynamic and differencing disks a copy at offset 0 "for redundancy"
 * (spec, "Dynamic Disk Header Format"); disks made before Virtual PC 2004 have a 511-byte footer.
 *
 * Policy (stricter than qemu 7.2 in one direction, more forgiving in the other, and always said):
 *  - the footer at the end is used when its cookie and checksum are right;
 *  - otherwise a valid copy at offset 0 of a dynamic or differencing disk is used, with a warning
 *    (an interrupted block allocation leaves data where the footer was: qemu itself appends blocks
 *    over the old footer, then rewrites it);
 *  - a copy at offset 0 that is damaged or differs from the end footer is reported as a warning.
 * qemu 7.2 instead always trusts the copy at offset 0 of a disk that starts with "conectix", and
 * refuses the image when that copy's checksum is wrong.
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { bytesEqual } from '../shared/text.js';
import { FOOTER, FOOTER_CHECKSUM_AT, FOOTER_SIZE, VHD_COOKIE, diskTypeName, vhdChecksum, type VhdFooter } from './layout.js';

/** Pre-2004 Virtual PC footers lack the last reserved byte (spec, "Hard Disk Footer Format"). */
const SHORT_FOOTER_SIZE = 511;

export interface ChosenFooter {
  footer: VhdFooter;
  /** Where the chosen footer lies in the file. */
  at: number;
  /** Where the footer at the end of the file lies (the end of a fixed disk's data). */
  endAt: number;
}

type State = { kind: 'valid'; raw: Uint8Array } | { kind: 'no-cookie' } | { kind: 'bad-checksum'; stored: number; computed: number };

function classify(raw: Uint8Array): State {
  if (!bytesEqual(raw, 0, VHD_COOKIE)) return { kind: 'no-cookie' };
  const stored = new DataView(raw.buffer, raw.byteOffset, raw.length).getUint32(FOOTER_CHECKSUM_AT);
  const computed = vhdChecksum(raw);
  return stored === computed ? { kind: 'valid', raw } : { kind: 'bad-checksum', stored, computed };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function describe(s: State): string {
  return s.kind === 'no-cookie' ? 'has no "conectix" cookie' : s.kind === 'bad-checksum' ? `has a wrong checksum (stored ${hex(s.stored)}, computed ${hex(s.computed)})` : 'is valid';
}

/** Reads the end footer (512 or 511 bytes) and the copy at offset 0, and picks one (see above). */
export async function readFooter(source: ByteSource, size: number, file: string, warnings: string[]): Promise<ChosenFooter> {
  if (size < SHORT_FOOTER_SIZE) {
    throw new TruncatedImageError(`file of ${size} bytes is too small for a VHD footer`, { file, field: 'footer', offset: 0 });
  }
  let endAt = size - FOOTER_SIZE;
  let end: State = { kind: 'no-cookie' };
  if (size >= FOOTER_SIZE) end = classify(await source.read(endAt, FOOTER_SIZE));
  if (end.kind === 'no-cookie') {
    // A 511-byte footer: the missing byte is reserved and zero, so the checksum is unchanged.
    const short = new Uint8Array(FOOTER_SIZE);
    await source.read(size - SHORT_FOOTER_SIZE, SHORT_FOOTER_SIZE, short.subarray(0, SHORT_FOOTER_SIZE));
    const s = classify(short);
    if (s.kind !== 'no-cookie') {
      end = s;
      endAt = size - SHORT_FOOTER_SIZE;
    }
  }
  const head = size >= FOOTER_SIZE ? classify(await source.read(0, FOOTER_SIZE)) : ({ kind: 'no-cookie' } as State);

  const parse = (raw: Uint8Array, at: number) => FOOTER.parse(raw, { file, base: at });
  const headIsCopy = (h: State): h is { kind: 'valid'; raw: Uint8Array } => {
    if (h.kind !== 'valid') return false;
    const t = diskTypeName(parse(h.raw, 0).diskType);
    return t === 'dynamic' || t === 'differencing';
  };

  if (end.kind === 'valid') {
    const footer = parse(end.raw, endAt);
    const type = diskTypeName(footer.diskType);
    // Only dynamic and differencing disks have a copy; a fixed disk's first sector is guest data.
    if (type === 'dynamic' || type === 'differencing') {
      if (head.kind === 'bad-checksum') warnings.push(`the footer copy at offset 0 ${describe(head)}; using the footer at the end of the file`);
      else if (head.kind === 'no-cookie') warnings.push('there is no footer copy at offset 0; using the footer at the end of the file');
      else if (!sameBytes(head.raw, end.raw)) {
        warnings.push('the footer copy at offset 0 differs from the footer at the end of the file; using the one at the end');
      }
    }
    return { footer, at: endAt, endAt };
  }
  if (headIsCopy(head)) {
    warnings.push(`the footer at the end of the file ${describe(end)}; using the copy at offset 0`);
    return { footer: parse(head.raw, 0), at: 0, endAt };
  }
  if (end.kind === 'bad-checksum') {
    throw new CorruptImageError(`footer checksum is ${hex(end.stored)}, but the footer sums to ${hex(end.computed)}`, {
      file,
      field: 'checksum',
      offset: endAt + FOOTER_CHECKSUM_AT,
    });
  }
  if (head.kind === 'bad-checksum') {
    throw new CorruptImageError(`footer checksum is ${hex(head.stored)}, but the footer sums to ${hex(head.computed)}, and there is no footer at the end of the file`, {
      file,
      field: 'checksum',
      offset: FOOTER_CHECKSUM_AT,
    });
  }
  throw new CorruptImageError(`not a VHD image: no footer with the "${VHD_COOKIE}" cookie at the end of the file or at offset 0`, {
    file,
    field: 'cookie',
    offset: endAt,
  });
}
