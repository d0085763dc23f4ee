/** Small byte helpers shared by probes and parsers. */

export function bytesEqual(buf: Uint8Array, at: number, magic: string): boolean {
  if (at < 0 || at + magic.length > buf.length) return false;
  for (let i = 0; i < magic.length; i++) if (buf[at + i] !== magic.charCodeAt(i)) return false;
  return true;
}

export function u32beAt(buf: Uint8Array, at: number): number | undefined {
  if (at < 0 || at + 4 > buf.length) return undefined;
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

export function u32leAt(buf: Uint8Array, at: number): number | undefined {
  if (at < 0 || at + 4 > buf.length) return undefined;
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

/** Decodes bytes up to the first NUL as Latin-1-safe UTF-8 text (descriptors are ASCII in practice). */
export function textUntilNul(buf: Uint8Array): string {
  let end = buf.indexOf(0);
  if (end < 0) end = buf.length;
  return new TextDecoder('utf-8', { fatal: false }).decode(buf.subarray(0, end));
}
