/**
 * An LVM2 physical volume's label and metadata area (lib/label/label.h, lib/format_text/layout.h):
 * "LABELONE" in one of the first four sectors, the PV header after it (PV uuid, data and metadata
 * area lists), and in each metadata area a header whose first raw location points at the current
 * text of the volume group's metadata, possibly wrapping round the circular buffer.
 */
import { CorruptImageError, LimitExceededError } from '../../../errors.js';
import { crc32 } from '../../crc32.js';
import { dv, latin1, readAt, startsWith } from '../../probes/bytes.js';
import { LVM_LABEL_SECTORS } from '../../probes/containers.js';
import type { BlockView } from '../../view.js';
import { MAX_CONFIG_TEXT } from './config.js';

const MDA_MAGIC = ' LVM2 x[5A%r0N*>';
const MDA_HEADER_SIZE = 512;
/** lib/misc/crc.h INITIAL_CRC: LVM's CRC-32 starts here and skips the final inversion. */
const LVM_INITIAL_CRC = 0xf597a6cf;
const RAW_LOCN_IGNORED = 0x1;
/** A PV header lists a data area and one or two metadata areas; more than this is garbage. */
const MAX_AREAS = 8;

export const lvmCrc = (data: Uint8Array): number => ~crc32(data, ~LVM_INITIAL_CRC >>> 0) >>> 0;

export interface PvLabel {
  /** The 32-character PV id, without dashes. */
  uuid: string;
  deviceSize: number;
  dataAreas: { offset: number; size: number }[];
  metadataAreas: { offset: number; size: number }[];
}

function u64(d: DataView, at: number, where: { file: string; field: string; offset: number }): number {
  const v = d.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${where.field} ${v} is beyond 2^53`, where);
  return Number(v);
}

export async function readPvLabel(view: BlockView): Promise<PvLabel | undefined> {
  for (let s = 0; s < LVM_LABEL_SECTORS; s++) {
    const sec = await readAt(view, s * 512, 512);
    if (!sec) return undefined;
    if (!startsWith(sec, 0, 'LABELONE') || !startsWith(sec, 24, 'LVM2 001')) continue;
    const d = dv(sec);
    const where = (field: string, at: number) => ({ file: view.name, field, offset: s * 512 + at });
    const stored = d.getUint32(16, true);
    const computed = lvmCrc(sec.subarray(20));
    if (stored !== computed) throw new CorruptImageError(`LVM label CRC is 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`, where('label crc_xl', 16));
    const pvh = d.getUint32(20, true);
    if (pvh < 32 || pvh + 40 > 512) throw new CorruptImageError(`LVM PV header offset ${pvh} lies outside the label sector`, where('label offset_xl', 20));
    const uuid = latin1(sec.subarray(pvh, pvh + 32));
    const deviceSize = u64(d, pvh + 32, where('device_size_xl', pvh + 32));
    const lists: { offset: number; size: number }[][] = [[], []];
    let at = pvh + 40;
    for (const list of lists) {
      while (true) {
        if (at + 16 > 512) throw new CorruptImageError('LVM PV header area list runs past the label sector', where('disk_areas', at));
        const offset = u64(d, at, where('disk_locn offset', at));
        const size = u64(d, at + 8, where('disk_locn size', at + 8));
        at += 16;
        if (offset === 0 && size === 0) break;
        if (list.length >= MAX_AREAS) throw new LimitExceededError(`more than ${MAX_AREAS} areas in an LVM PV header`, where('disk_areas', at));
        list.push({ offset, size });
      }
    }
    return { uuid, deviceSize, dataAreas: lists[0], metadataAreas: lists[1] };
  }
  return undefined;
}

/** The current metadata text of one metadata area, or a reason it cannot be used. */
export async function readMetadataText(view: BlockView, area: { offset: number; size: number }): Promise<string | { problem: string }> {
  const where = (field: string, at: number) => ({ file: view.name, field, offset: area.offset + at });
  if (area.size < MDA_HEADER_SIZE || area.offset + area.size > view.size) {
    throw new CorruptImageError(`LVM metadata area (${area.size} bytes at ${area.offset}) does not fit the device`, where('mda', 0));
  }
  const h = await view.read(area.offset, MDA_HEADER_SIZE);
  if (!startsWith(h, 4, MDA_MAGIC)) throw new CorruptImageError('LVM metadata area header has no magic', where('mda_header magic', 4));
  const d = dv(h);
  if (d.getUint32(0, true) !== lvmCrc(h.subarray(4))) return { problem: 'metadata area header checksum mismatch' };
  const offset = u64(d, 40, where('raw_locn offset', 40));
  const size = u64(d, 48, where('raw_locn size', 48));
  const checksum = d.getUint32(56, true);
  const flags = d.getUint32(60, true);
  if (size === 0 || flags & RAW_LOCN_IGNORED) return { problem: 'metadata area holds no metadata' };
  if (size > MAX_CONFIG_TEXT || size > area.size - MDA_HEADER_SIZE) {
    throw new LimitExceededError(`LVM metadata of ${size} bytes does not fit its area (${area.size} bytes)`, where('raw_locn size', 48));
  }
  if (offset < MDA_HEADER_SIZE || offset >= area.size) throw new CorruptImageError(`LVM metadata offset ${offset} lies outside its area`, where('raw_locn offset', 40));
  // The area is a circular buffer after its header: text that reaches the end continues just after the header.
  const first = Math.min(size, area.size - offset);
  const text = new Uint8Array(size);
  text.set(await view.read(area.offset + offset, first), 0);
  if (first < size) text.set(await view.read(area.offset + MDA_HEADER_SIZE, size - first), first);
  if (lvmCrc(text) !== checksum) return { problem: 'metadata text checksum mismatch' };
  return new TextDecoder('utf-8').decode(text.indexOf(0) >= 0 ? text.subarray(0, text.indexOf(0)) : text);
}
