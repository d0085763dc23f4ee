/**
 * FAT directory entries (Microsoft FAT spec §6, §7): 8.3 entries with Windows NT's lowercase flags,
 * and VFAT long names, accepted only when every part of the chain is in order and carries the
 * checksum of the 8.3 entry that follows it (otherwise the 8.3 name stands, as Linux does).
 */
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_READ_ONLY = 0x01;
const ATTR_LONG_NAME = 0x0f;
const LAST_LONG_ENTRY = 0x40;
/** NT reserved byte: base (0x08) and extension (0x10) were lowercase when the name was made. */
const NT_LOWER_BASE = 0x08;
const NT_LOWER_EXT = 0x10;

export interface FatDirEntry {
  name: string;
  /** The 8.3 name as stored (e.g. "BOOTX64.EFI", "AFILEW~1.TEX"). */
  shortName: string;
  directory: boolean;
  readOnly: boolean;
  firstCluster: number;
  size: number;
  /** Byte position of the 8.3 entry on the device: unique, used as the inode number. */
  position: number;
  crtime: { date: number; time: number; tenths: number };
  mdate: number;
  mtime: number;
  adate: number;
}

/** The VFAT checksum of an 11-byte 8.3 name (spec §7.2 ChkSum). */
export function shortNameChecksum(name: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name[i]) & 0xff;
  return sum;
}

/**
 * 8.3 names are in an OEM code page that the filesystem does not record; code page 850 is mtools'
 * default (Linux mounts with 437, which differs only in the box-drawing and Greek half).
 */
const CP850_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u00ad±‗¾¶§÷¸°¨·¹³²■\u00a0';
const oem = (b: Uint8Array): string => Array.from(b, (c) => (c < 0x80 ? String.fromCharCode(c) : CP850_HIGH[c - 0x80])).join('').replace(/ +$/, '');
/** The NT flags lowercase every letter of the part, accented ones too (Windows, Linux's nls tolower, mdir's long-name column). */
const lowerCase = (s: string): string => s.toLowerCase();

/** Parses entries from consecutive directory bytes; `positionOf` maps an index to its device offset. Returns false at the end marker. */
export function parseDirEntries(buf: Uint8Array, positionOf: (index: number) => number, out: FatDirEntry[], lfn: LfnState): boolean {
  const d = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i + 32 <= buf.length; i += 32) {
    const first = buf[i];
    if (first === 0x00) return false;
    const attr = buf[i + 11];
    if (first === 0xe5) {
      lfn.reset();
      continue;
    }
    if ((attr & 0x3f) === ATTR_LONG_NAME) {
      lfn.add(buf.subarray(i, i + 32));
      continue;
    }
    const raw = buf.slice(i, i + 11);
    if (raw[0] === 0x05) raw[0] = 0xe5; // spec §6.1: 0x05 stands for a leading 0xE5 (a KANJI lead byte)
    const long = lfn.take(shortNameChecksum(buf.subarray(i, i + 11)));
    if (attr & ATTR_VOLUME_ID) continue;
    const nt = buf[i + 12];
    const base = oem(raw.subarray(0, 8));
    const ext = oem(raw.subarray(8, 11));
    if (base === '.' || base === '..') continue;
    const shortName = ext ? `${base}.${ext}` : base;
    const shown = (nt & NT_LOWER_BASE ? lowerCase(base) : base) + (ext ? `.${nt & NT_LOWER_EXT ? lowerCase(ext) : ext}` : '');
    out.push({
      name: long ?? shown,
      shortName,
      directory: (attr & ATTR_DIRECTORY) !== 0,
      readOnly: (attr & ATTR_READ_ONLY) !== 0,
      firstCluster: (d.getUint16(i + 20, true) << 16) | d.getUint16(i + 26, true),
      size: d.getUint32(i + 28, true),
      position: positionOf(i),
      crtime: { date: d.getUint16(i + 16, true), time: d.getUint16(i + 14, true), tenths: buf[i + 13] },
      mdate: d.getUint16(i + 24, true),
      mtime: d.getUint16(i + 22, true),
      adate: d.getUint16(i + 18, true),
    });
  }
  return true;
}

/** A VFAT long-name chain being collected: parts arrive last-first, numbered down to 1. */
export class LfnState {
  private parts: string[] = [];
  private expect = 0;
  private checksum = -1;

  reset(): void {
    this.parts = [];
    this.expect = 0;
    this.checksum = -1;
  }

  add(e: Uint8Array): void {
    const ord = e[0] & 0x1f;
    if (e[0] & LAST_LONG_ENTRY) {
      this.reset();
      if (ord === 0) return;
      this.expect = ord;
      this.checksum = e[13];
    } else if (ord !== this.expect || e[13] !== this.checksum || ord === 0) {
      this.reset();
      return;
    }
    const d = new DataView(e.buffer, e.byteOffset, 32);
    let s = '';
    for (const at of [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]) s += String.fromCharCode(d.getUint16(at, true));
    this.parts[ord - 1] = s;
    this.expect = ord - 1;
  }

  /** The long name if a complete chain with this checksum precedes the 8.3 entry. */
  take(checksum: number): string | undefined {
    const ok = this.checksum === checksum && this.expect === 0 && this.parts.length > 0;
    const name = ok ? this.parts.join('') : undefined;
    this.reset();
    if (name === undefined) return undefined;
    const nul = name.indexOf('\0');
    const cut = nul >= 0 ? name.slice(0, nul) : name;
    return cut.length > 0 && cut.length <= 255 ? cut : undefined;
  }
}

export { ATTR_READ_ONLY };
