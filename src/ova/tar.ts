/**
 * A small tar walker (POSIX.1-1988 ustar, GNU long names 'L', pax 'x'/'g' headers with path and
 * size). It only lists members and where their bytes lie; nothing is ever written on the host, and
 * member names are checked so that a `../` or absolute name is refused rather than trusted.
 */
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError } from '../errors.js';
import type { ByteSource } from '../stream/source.js';

export const BLOCK = 512;
/** Real OVAs hold a descriptor, a manifest, a certificate and a few disks (or their chunks). */
export const MAX_MEMBERS = 10_000;
/** Long names and pax records are a few hundred bytes; anything larger is not an OVA. */
export const MAX_META_BYTES = 64 * 1024;

export interface TarMember {
  name: string;
  /** Offset of the member's data in the tar. */
  offset: number;
  size: number;
  /** Offset of its header, for messages. */
  header: number;
}

const decoder = new TextDecoder('utf-8');

function cstr(b: Uint8Array, at: number, len: number): string {
  const s = b.subarray(at, at + len);
  const z = s.indexOf(0);
  return decoder.decode(z < 0 ? s : s.subarray(0, z));
}

/** Octal, or GNU base-256 (high bit set) for sizes above 8 GiB. */
export function parseNumber(b: Uint8Array, at: number, len: number, file: string, offset: number, field: string): number {
  const s = b.subarray(at, at + len);
  if (s[0]! & 0x80) {
    let v = s[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + s[i]!;
    if (!Number.isSafeInteger(v)) throw new CorruptImageError('tar number too large', { file, field, offset: offset + at });
    return v;
  }
  const text = decoder.decode(s).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new CorruptImageError(`tar header field is not octal: ${JSON.stringify(text.slice(0, 20))}`, { file, field, offset: offset + at });
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw new CorruptImageError('tar number too large', { file, field, offset: offset + at });
  return v;
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  const text = decoder.decode(h.subarray(148, 156)).replace(/[\0 ].*$/s, '').trim();
  return /^[0-7]+$/.test(text) && parseInt(text, 8) === sum;
}

/** Pax extended header records: "LEN key=value\n". */
export function parsePax(data: Uint8Array, file: string, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(decoder.decode(data.subarray(at, sp)));
    if (!Number.isSafeInteger(len) || len <= sp - at || at + len > data.length) {
      throw new CorruptImageError('bad pax record length', { file, field: 'pax', offset: offset + at });
    }
    const rec = decoder.decode(data.subarray(sp + 1, at + len - 1));
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

/** Refuses absolute names and `..`: a name in an OVA is a reference, never a host path. */
export function checkMemberName(name: string, file: string, offset: number): string {
  const clean = name.replace(/^\.\//, '');
  if (clean === '' || clean.startsWith('/') || clean.split(/[\\/]/).includes('..') || /^[A-Za-z]:/.test(clean)) {
    throw new CorruptImageError(`tar member name ${JSON.stringify(name)} leaves the archive`, { file, field: 'name', offset });
  }
  return clean;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** The regular files of a tar, in order; directories and links are skipped. */
export async function listTar(src: ByteSource): Promise<TarMember[]> {
  const out: TarMember[] = [];
  for await (const m of walkTar(src)) out.push(m);
  return out;
}

/**
 * Walks a tar's headers forward, yielding each regular file as its header is read: on a pipe the
 * caller reads (or skips) a member's data before asking for the next.
 */
export async function* walkTar(src: ByteSource): AsyncGenerator<TarMember> {
  const file = src.name;
  let count = 0;
  let pos = 0;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  let global = new Map<string, string>();
  let headers = 0;
  for (;;) {
    if (++headers > MAX_MEMBERS * 3) throw new LimitExceededError(`more than ${MAX_MEMBERS * 3} tar headers`, { file, offset: pos });
    const h = await src.readUpTo(pos, BLOCK);
    if (h.length < BLOCK) {
      if (h.length === 0 && count > 0) return; // tar without end-of-archive blocks
      throw new CorruptImageError('not a tar archive: truncated header', { file, field: 'header', offset: pos });
    }
    if (isZero(h)) return;
    if (!checksumOk(h)) throw new CorruptImageError('not a tar archive: header checksum mismatch', { file, field: 'chksum', offset: pos + 148 });
    const type = String.fromCharCode(h[156]! || 0x30);
    let size = parseNumber(h, 124, 12, file, pos, 'size');
    const dataAt = pos + BLOCK;
    const meta = async (): Promise<Uint8Array> => {
      if (size > MAX_META_BYTES) throw new LimitExceededError(`tar metadata member of ${size} bytes`, { file, field: 'size', offset: pos + 124 });
      return src.read(dataAt, size);
    };
    if (type === 'L') {
      longName = cstr(await meta(), 0, size);
    } else if (type === 'x') {
      pax = parsePax(await meta(), file, dataAt);
    } else if (type === 'g') {
      global = new Map([...global, ...parsePax(await meta(), file, dataAt)]);
    } else if (type === '0' || type === '7') {
      const magic = cstr(h, 257, 6);
      const prefix = magic === 'ustar' ? cstr(h, 345, 155) : '';
      let name = longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      const paxPath = pax.get('path') ?? global.get('path');
      if (paxPath !== undefined) name = paxPath;
      const paxSize = pax.get('size') ?? global.get('size');
      if (paxSize !== undefined) {
        const v = Number(paxSize);
        if (!/^\d+$/.test(paxSize) || !Number.isSafeInteger(v)) throw new CorruptImageError('bad pax size', { file, field: 'pax size', offset: pos });
        size = v;
      }
      if (src.size !== undefined && dataAt + size > src.size) {
        throw new CorruptImageError(`tar member of ${size} bytes runs past the end of the archive`, { file, field: 'size', offset: pos + 124 });
      }
      if (++count > MAX_MEMBERS) throw new LimitExceededError(`more than ${MAX_MEMBERS} tar members`, { file, offset: pos });
      longName = undefined;
      pax = new Map();
      yield { name: checkMemberName(name, file, pos), offset: dataAt, size, header: pos };
    } else if (type === 'S') {
      throw new UnsupportedFeatureError('GNU sparse tar members are not supported', { file, field: 'typeflag', offset: pos + 156 });
    } else {
      longName = undefined;
      pax = new Map();
    }
    if (src.size !== undefined && dataAt + size > src.size) {
      throw new CorruptImageError(`tar member of ${size} bytes runs past the end of the archive`, { file, field: 'size', offset: pos + 124 });
    }
    pos = dataAt + Math.ceil(size / BLOCK) * BLOCK;
  }
}
