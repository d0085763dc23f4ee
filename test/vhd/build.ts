/**
 * Builds dynamic and differencing VHDs byte by byte for tests, independently of the production
 * layout code (plain DataView writes from the spec's tables), so that a wrong offset in
 * src/formats/vhd/layout.ts cannot hide behind the same wrong offset here. qemu-img cannot make
 * differencing disks; these are checked against libvhdi instead.
 */
import { randomBytes } from 'node:crypto';

export const SECTOR = 512;

export interface BuiltBlock {
  index: number;
  /** blockSize bytes. */
  data: Uint8Array;
  /** Which sectors are present (bit set); all when omitted. */
  present?: (sector: number) => boolean;
}

export interface BuiltLocator {
  /** Four-character platform code: W2ru, W2ku, Wi2r, Wi2k, MacX, "Mac ". */
  code: string;
  data: Uint8Array;
}

export interface BuildSpec {
  type: 'dynamic' | 'differencing';
  /** current_size; the geometry is computed by the spec algorithm, the creator decides which is used. */
  size: number;
  blockSize: number;
  /** Creator application; 'win ' (the default) makes readers use current_size. */
  creator?: string;
  uuid?: Uint8Array;
  blocks: BuiltBlock[];
  parent?: { uuid: Uint8Array; unicodeName: string; locators: BuiltLocator[]; timestamp?: number };
  /** Omit the footer copy at offset 0 (zeros instead). */
  noHeadCopy?: boolean;
}

function checksum(buf: Uint8Array, at: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < at || i >= at + 4) sum += buf[i];
  return ~sum >>> 0;
}

function putAscii(buf: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
}

export const utf16le = (s: string) => new Uint8Array(Buffer.from(s, 'utf16le'));
export const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

/** Spec appendix CHS algorithm (independent copy). */
function chs(totalSectors: number): [number, number, number] {
  const t = Math.min(totalSectors, 65535 * 16 * 255);
  let spt: number, heads: number, cth: number;
  if (t >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(t / spt);
  } else {
    spt = 17;
    cth = Math.floor(t / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(t / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(t / spt);
    }
  }
  return [Math.floor(cth / heads), heads, spt];
}

export function footer(spec: BuildSpec, uuid: Uint8Array): Uint8Array {
  const f = new Uint8Array(512);
  const dv = new DataView(f.buffer);
  putAscii(f, 0, 'conectix');
  dv.setUint32(8, 2);
  dv.setUint32(12, 0x00010000);
  dv.setBigUint64(16, 512n);
  dv.setUint32(24, 0x2e000000);
  putAscii(f, 28, spec.creator ?? 'win ');
  dv.setUint32(32, 0x000a0000);
  putAscii(f, 36, 'Wi2k');
  dv.setBigUint64(40, BigInt(spec.size));
  dv.setBigUint64(48, BigInt(spec.size));
  const [c, h, s] = chs(spec.size / SECTOR);
  dv.setUint16(56, c);
  f[58] = h;
  f[59] = s;
  dv.setUint32(60, spec.type === 'dynamic' ? 3 : 4);
  f.set(uuid, 68);
  dv.setUint32(64, checksum(f, 64));
  return f;
}

/** Returns the image bytes and its footer unique id. */
export function buildVhd(spec: BuildSpec): { bytes: Uint8Array; uuid: Uint8Array } {
  const uuid = spec.uuid ?? new Uint8Array(randomBytes(16));
  const bs = spec.blockSize;
  const entries = Math.ceil(spec.size / bs);
  const bitmapSize = Math.max(SECTOR, Math.ceil(bs / SECTOR / 8 / SECTOR) * SECTOR);
  // Locator data right after the header, each padded to a sector; then the BAT; then blocks.
  let at = 1536;
  const locs: Array<{ code: string; data: Uint8Array; offset: number; space: number }> = [];
  for (const l of spec.parent?.locators ?? []) {
    const space = Math.ceil(Math.max(1, l.data.length) / SECTOR) * SECTOR;
    locs.push({ ...l, offset: at, space });
    at += space;
  }
  const tableOffset = at;
  const tableBytes = Math.ceil((entries * 4) / SECTOR) * SECTOR;
  const dataStart = tableOffset + tableBytes;
  const sorted = [...spec.blocks].sort((a, b) => a.index - b.index);
  const total = dataStart + sorted.length * (bitmapSize + bs) + 512;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const foot = footer(spec, uuid);
  if (!spec.noHeadCopy) out.set(foot, 0);
  out.set(foot, total - 512);

  const h = out.subarray(512, 1536);
  const hv = new DataView(h.buffer, h.byteOffset, 1024);
  putAscii(h, 0, 'cxsparse');
  hv.setBigUint64(8, 0xffffffffffffffffn);
  hv.setBigUint64(16, BigInt(tableOffset));
  hv.setUint32(24, 0x00010000);
  hv.setUint32(28, entries);
  hv.setUint32(32, bs);
  if (spec.parent) {
    h.set(spec.parent.uuid, 40);
    hv.setUint32(56, spec.parent.timestamp ?? 0x2e000000);
    const name = Buffer.from(spec.parent.unicodeName, 'utf16le').swap16();
    h.set(name.subarray(0, 512), 64);
    locs.forEach((l, i) => {
      const e = 576 + i * 24;
      putAscii(h, e, l.code);
      hv.setUint32(e + 4, l.space / SECTOR);
      hv.setUint32(e + 8, l.data.length);
      hv.setBigUint64(e + 16, BigInt(l.offset));
      out.set(l.data, l.offset);
    });
  }
  hv.setUint32(36, checksum(h, 36));

  for (let i = 0; i < tableBytes; i += 4) dv.setUint32(tableOffset + i, 0xffffffff);
  sorted.forEach((b, slot) => {
    const off = dataStart + slot * (bitmapSize + bs);
    dv.setUint32(tableOffset + b.index * 4, off / SECTOR);
    for (let s = 0; s < bs / SECTOR; s++) {
      if (!b.present || b.present(s)) out[off + (s >> 3)] |= 0x80 >> (s & 7);
    }
    out.set(b.data.subarray(0, bs), off + bitmapSize);
  });
  return { bytes: out, uuid };
}

/**
 * The expected content of a chain, top first: a sector comes from the first layer whose block is
 * allocated and whose bitmap marks it present (a dynamic base ignores its bitmap, as qemu does).
 */
export function expectedChain(layers: BuildSpec[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let s = 0; s < size / SECTOR; s++) {
    for (const layer of layers) {
      if (s * SECTOR >= layer.size) continue;
      const bs = layer.blockSize;
      const b = layer.blocks.find((x) => x.index === Math.floor((s * SECTOR) / bs));
      if (!b) continue;
      const inBlock = (s * SECTOR) % bs;
      const sector = inBlock / SECTOR;
      if (layer.type === 'differencing' && b.present && !b.present(sector)) continue;
      out.set(b.data.subarray(inBlock, inBlock + SECTOR), s * SECTOR);
      break;
    }
  }
  return out;
}

/** A minimal Mac OS alias record holding a file name (Str63 at offset 50) and no tagged items. */
export function macAlias(fileName: string): Uint8Array {
  const a = new Uint8Array(150 + 2);
  const dv = new DataView(a.buffer);
  dv.setUint16(4, a.length);
  dv.setUint16(6, 2);
  a[50] = fileName.length;
  putAscii(a, 51, fileName);
  dv.setInt16(150, -1);
  return a;
}

/** A fixed VHD: the data then a footer of type 2 (511 bytes long when `shortFooter`). */
export function buildFixed(data: Uint8Array, opts: { creator?: string; shortFooter?: boolean } = {}): Uint8Array {
  const f = footer({ type: 'dynamic', size: data.length, blockSize: 0, blocks: [], creator: opts.creator }, new Uint8Array(randomBytes(16)));
  const dv = new DataView(f.buffer);
  dv.setBigUint64(16, 0xffffffffffffffffn);
  dv.setUint32(60, 2);
  dv.setUint32(64, checksum(f, 64));
  const len = opts.shortFooter ? 511 : 512;
  const out = new Uint8Array(data.length + len);
  out.set(data);
  out.set(f.subarray(0, len), data.length);
  return out;
}

/** Recomputes the checksum of the footer (512 bytes at `at`) after a test changed it. */
export function refreshFooterChecksum(image: Uint8Array, at: number): void {
  const f = image.subarray(at, at + 512);
  new DataView(f.buffer, f.byteOffset, 512).setUint32(64, checksum(f, 64));
}

/** Same for the dynamic header (1024 bytes at `at`). */
export function refreshHeaderChecksum(image: Uint8Array, at = 512): void {
  const h = image.subarray(at, at + 1024);
  new DataView(h.buffer, h.byteOffset, 1024).setUint32(36, checksum(h, 36));
}
