/**
 * The parent locator of a differencing VHDX (MS-VHDX 2.6.2.6): a header naming the locator type,
 * then key/value pairs of UTF-16LE strings. The VHDX type defines parent_linkage (the parent's
 * DataWriteGuid), parent_linkage2, relative_path, volume_path and absolute_win32_path.
 */
import { CorruptImageError, UnsupportedFeatureError } from '../../errors.js';
import { formatUuid, parseUuid, uuidEqual } from '../shared/uuid.js';
import { PARENT_LOCATOR_ENTRY, PARENT_LOCATOR_HEADER, PARENT_LOCATOR_VHDX } from './layout.js';

export interface ParentLocator {
  entries: Map<string, string>;
  /** parent_linkage as GUID bytes. */
  linkage: Uint8Array;
}

const utf16 = new TextDecoder('utf-16le');

export function parseParentLocator(buf: Uint8Array, file: string, base: number): ParentLocator {
  const h = PARENT_LOCATOR_HEADER.parse(buf, { file, base });
  const where = { file, field: 'parent locator', offset: base };
  if (!uuidEqual(h.locatorType, PARENT_LOCATOR_VHDX)) {
    throw new UnsupportedFeatureError(`parent locator type ${formatUuid(h.locatorType, 'guid')} is not the VHDX one`, where);
  }
  const entries = new Map<string, string>();
  const text = (offset: number, length: number, what: string): string => {
    if (offset < PARENT_LOCATOR_HEADER.size || offset + length > buf.length || length % 2 !== 0) {
      throw new CorruptImageError(`parent locator ${what} (${length} bytes at ${offset}) lies outside the item`, where);
    }
    return utf16.decode(buf.subarray(offset, offset + length));
  };
  for (let i = 0; i < h.keyValueCount; i++) {
    const at = PARENT_LOCATOR_HEADER.size + i * PARENT_LOCATOR_ENTRY.size;
    const e = PARENT_LOCATOR_ENTRY.parse(buf, { file, base }, at);
    entries.set(text(e.keyOffset, e.keyLength, 'key'), text(e.valueOffset, e.valueLength, 'value'));
  }
  const raw = entries.get('parent_linkage');
  const linkage = raw !== undefined ? parseUuid(raw.replace(/^\{|\}$/g, ''), 'guid') : undefined;
  if (!linkage) throw new CorruptImageError(`parent locator has ${raw === undefined ? 'no parent_linkage' : `a parent_linkage that is not a GUID: ${JSON.stringify(raw)}`}`, where);
  return { entries, linkage };
}

/** Builds the item's bytes (tests and a future differencing writer). */
export function serializeParentLocator(pairs: Array<[string, string]>): Uint8Array {
  const enc = (s: string) => {
    const b = new Uint8Array(s.length * 2);
    for (let i = 0; i < s.length; i++) new DataView(b.buffer).setUint16(i * 2, s.charCodeAt(i), true);
    return b;
  };
  const strings = pairs.map(([k, v]) => [enc(k), enc(v)] as const);
  let at = PARENT_LOCATOR_HEADER.size + pairs.length * PARENT_LOCATOR_ENTRY.size;
  const total = at + strings.reduce((n, [k, v]) => n + k.length + v.length, 0);
  const out = new Uint8Array(total);
  PARENT_LOCATOR_HEADER.serialize({ locatorType: PARENT_LOCATOR_VHDX, reserved: 0, keyValueCount: pairs.length }, out);
  strings.forEach(([k, v], i) => {
    out.set(k, at);
    out.set(v, at + k.length);
    PARENT_LOCATOR_ENTRY.serialize({ keyOffset: at, valueOffset: at + k.length, keyLength: k.length, valueLength: v.length }, out, PARENT_LOCATOR_HEADER.size + i * PARENT_LOCATOR_ENTRY.size);
    at += k.length + v.length;
  });
  return out;
}

