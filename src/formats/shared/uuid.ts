/**
 * 16-byte identifiers as disk formats store them. Two byte orders are in use:
 *  - 'rfc': the bytes in the order they are printed (RFC 4122 network order) — VHD footers and
 *    dynamic headers (libvhdi prints them this way);
 *  - 'guid': Microsoft GUID order, whose first three fields (u32, u16, u16) are little-endian —
 *    VDI (VirtualBox RTUUID, QEMU's vdi.c byte-swaps them) and VHDX.
 */
import { randomBytes } from 'node:crypto';

export type UuidOrder = 'rfc' | 'guid';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The byte positions printed in each order, so one loop formats both. */
const PRINT_ORDER: Record<UuidOrder, readonly number[]> = {
  rfc: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  guid: [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15],
};

export function formatUuid(bytes: Uint8Array, order: UuidOrder): string {
  const p = PRINT_ORDER[order];
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[bytes[p[i]]];
  }
  return s;
}

/** A UUID as printed. */
export const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into the stored bytes of the given order. */
export function parseUuid(text: string, order: UuidOrder): Uint8Array | undefined {
  if (!UUID_TEXT.test(text)) return undefined;
  const hex = text.replace(/-/g, '');
  const printed = new Uint8Array(16);
  for (let i = 0; i < 16; i++) printed[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const out = new Uint8Array(16);
  const p = PRINT_ORDER[order];
  for (let i = 0; i < 16; i++) out[p[i]] = printed[i];
  return out;
}

export function isNullUuid(bytes: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (bytes[i] !== 0) return false;
  return true;
}

export function uuidEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A random (version 4, RFC 4122 variant) UUID, stored in the given order: the version and
 * variant bits land on the printed digits whichever order the format uses.
 */
export function randomUuid(order: UuidOrder): Uint8Array {
  const printed = randomBytes(16);
  printed[6] = (printed[6] & 0x0f) | 0x40;
  printed[8] = (printed[8] & 0x3f) | 0x80;
  const out = new Uint8Array(16);
  const p = PRINT_ORDER[order];
  for (let i = 0; i < 16; i++) out[p[i]] = printed[i];
  return out;
}

/** The `uuid=` option's bytes (already checked by the option schema), or a new random UUID. */
export function uuidOrRandom(text: string | undefined, order: UuidOrder): Uint8Array {
  return (text !== undefined ? parseUuid(text, order) : undefined) ?? randomUuid(order);
}
