/**
 * One declared layout gives both the parser and the serializer of an on-disk record.
 * At declaration time we check that every field fits inside the record and that no two
 * fields overlap (the equivalent of QEMU's QEMU_BUILD_BUG_ON on struct sizes), so a typo in
 * an offset fails when the module loads, not when a user opens a disk.
 */
import { CorruptImageError, TruncatedImageError } from '../../errors.js';

export interface ParseContext {
  /** File name shown in errors. */
  file?: string;
  /** Byte offset of the record inside the file, so errors name absolute offsets. */
  base?: number;
  /** The record's name ("qcow2 header"), set by parse() for the messages of its fields. */
  record?: string;
  /** How the record's specification spells a field key, for messages (set by parse()). */
  fieldName?: (key: string) => string;
}

export interface StructOptions {
  /**
   * How the format's specification spells field names, so messages use them: qcow2.txt writes
   * l1_table_offset for our l1TableOffset (specFieldName). Default: the key as declared (the VMDK
   * and VHD layouts use their specifications' own camelCase names).
   */
  fieldName?: (key: string) => string;
}

/**
 * A field as the format specifications write it: our camelCase keys in the specs' snake_case
 * (l1TableOffset → l1_table_offset, the name in qcow2.txt and QEMU's messages).
 */
export function specFieldName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export interface Field<T> {
  readonly offset: number;
  readonly size: number;
  read(dv: DataView, at: number, name: string, ctx: ParseContext): T;
  write(dv: DataView, at: number, value: T): void;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function numField(offset: number, size: 1 | 2 | 4, little: boolean): Field<number> {
  return {
    offset,
    size,
    read: (dv, at) => (size === 1 ? dv.getUint8(at) : size === 2 ? dv.getUint16(at, little) : dv.getUint32(at, little)),
    write: (dv, at, v) => {
      if (size === 1) dv.setUint8(at, v);
      else if (size === 2) dv.setUint16(at, v, little);
      else dv.setUint32(at, v >>> 0, little);
    },
  };
}

/**
 * 64-bit integers become numbers only when they fit in 2^53: above that, no real image has
 * such a size or offset, so the file is corrupt (docs/ARCHITECTURE.md example 2).
 */
function u64Field(offset: number, little: boolean): Field<number> {
  return {
    offset,
    size: 8,
    read(dv, at, name, ctx) {
      const v = dv.getBigUint64(at, little);
      if (v > MAX_SAFE) {
        const field = ctx.fieldName ? ctx.fieldName(name) : name;
        throw new CorruptImageError(`the image is corrupt: ${ctx.record ? `${ctx.record} field ` : ''}${field} is ${v}, larger than any size or offset an image can have (2^53)`, {
          file: ctx.file,
          field,
          offset: (ctx.base ?? 0) + offset,
        });
      }
      return Number(v);
    },
    write: (dv, at, v) => dv.setBigUint64(at, BigInt(v), little),
  };
}

function bigField(offset: number, little: boolean): Field<bigint> {
  return {
    offset,
    size: 8,
    read: (dv, at) => dv.getBigUint64(at, little),
    write: (dv, at, v) => dv.setBigUint64(at, BigInt.asUintN(64, v), little),
  };
}

export const u8 = (offset: number) => numField(offset, 1, false);
export const u16le = (offset: number) => numField(offset, 2, true);
export const u16be = (offset: number) => numField(offset, 2, false);
export const u32le = (offset: number) => numField(offset, 4, true);
export const u32be = (offset: number) => numField(offset, 4, false);
export const u64le = (offset: number) => u64Field(offset, true);
export const u64be = (offset: number) => u64Field(offset, false);
/** A 64-bit word kept as bigint: feature bitmaps, raw table entries, sentinel values such as all-ones. */
export const bits64le = (offset: number) => bigField(offset, true);
export const bits64be = (offset: number) => bigField(offset, false);

/** Raw bytes (a copy, so the record does not pin the read buffer). */
export function bytes(offset: number, size: number): Field<Uint8Array> {
  return {
    offset,
    size,
    read: (dv, at) => new Uint8Array(dv.buffer.slice(dv.byteOffset + at, dv.byteOffset + at + size)),
    write(dv, at, v) {
      const dst = new Uint8Array(dv.buffer, dv.byteOffset + at, size);
      dst.fill(0);
      dst.set(v.subarray(0, size));
    },
  };
}

/** Latin-1 text padded with NULs (magic cookies, 4CC codes, fixed-width names). Trailing NULs are dropped. */
export function ascii(offset: number, size: number): Field<string> {
  return {
    offset,
    size,
    read(dv, at) {
      let end = size;
      while (end > 0 && dv.getUint8(at + end - 1) === 0) end--;
      let s = '';
      for (let i = 0; i < end; i++) s += String.fromCharCode(dv.getUint8(at + i));
      return s;
    },
    write(dv, at, v) {
      for (let i = 0; i < size; i++) dv.setUint8(at + i, i < v.length ? v.charCodeAt(i) & 0xff : 0);
    },
  };
}

export type Parsed<S> = S extends Struct<infer F> ? { [K in keyof F]: F[K] extends Field<infer T> ? T : never } : never;
type Values<F> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

export interface Struct<F extends Record<string, Field<unknown>>> {
  readonly name: string;
  readonly size: number;
  readonly fields: F;
  /** Parses `size` bytes at `at` of `buf`; throws TruncatedImageError when they are not all there. */
  parse(buf: Uint8Array, ctx?: ParseContext, at?: number): Values<F>;
  /** Writes the record into `into` at `at` (a fresh zeroed buffer when omitted); bytes not covered by a field are left as they are. */
  serialize(value: Values<F>, into?: Uint8Array, at?: number): Uint8Array;
  /** Absolute offset of a field, for error messages. */
  offsetOf(field: keyof F): number;
}

export function struct<F extends Record<string, Field<any>>>(name: string, size: number, fields: F, opts: StructOptions = {}): Struct<F> {
  const spans = Object.entries(fields)
    .map(([k, f]) => ({ k, start: f.offset, end: f.offset + f.size }))
    .sort((a, b) => a.start - b.start);
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    if (s.start < 0 || s.end > size) throw new Error(`layout ${name}: field ${s.k} [${s.start},${s.end}) does not fit in ${size} bytes`);
    if (i > 0 && spans[i - 1].end > s.start) throw new Error(`layout ${name}: fields ${spans[i - 1].k} and ${s.k} overlap`);
  }
  return {
    name,
    size,
    fields,
    parse(buf, ctx = {}, at = 0) {
      if (at < 0 || buf.length - at < size) {
        throw new TruncatedImageError(`the file ends inside the ${name}: it needs ${size} bytes, only ${Math.max(0, buf.length - at)} are there (a truncated image?)`, {
          file: ctx.file,
          field: name,
          offset: (ctx.base ?? 0) + at,
        });
      }
      const dv = new DataView(buf.buffer, buf.byteOffset + at, size);
      const out: Record<string, unknown> = {};
      const sub: ParseContext = { file: ctx.file, base: (ctx.base ?? 0) + at, record: name, fieldName: opts.fieldName };
      for (const [k, f] of Object.entries(fields)) out[k] = f.read(dv, f.offset, k, sub);
      return out as Values<F>;
    },
    serialize(value, into, at = 0) {
      const buf = into ?? new Uint8Array(size);
      const dv = new DataView(buf.buffer, buf.byteOffset + at, size);
      for (const [k, f] of Object.entries(fields)) f.write(dv, f.offset, (value as Record<string, unknown>)[k]);
      return buf;
    },
    offsetOf: (field) => fields[field as string].offset,
  };
}
