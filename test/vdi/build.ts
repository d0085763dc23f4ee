/**
 * Builds VDIs byte by byte for tests, from VirtualBox's VDICore.h tables with plain DataView
 * writes (independent of src/formats/vdi/layout.ts), so that block sizes, block extra areas and
 * map values qemu-img never writes can be read and checked.
 */
export type MapEntry = 'free' | 'zero' | { slot: number; data: Uint8Array } | { raw: number };

export interface VdiSpec {
  diskSize: number;
  blockSize?: number;
  blockExtra?: number;
  /** 1 normal (dynamic), 2 fixed (static), 3 undo, 4 diff. */
  type?: number;
  version?: number;
  headerSize?: number;
  text?: string;
  /** One entry per block; free when missing. */
  map?: MapEntry[];
  blocksInImage?: number;
  /** Written as is; the count of slots when omitted. */
  blocksAllocated?: number;
  offBlocks?: number;
  /** Image UUID bytes as stored. */
  uuidImage?: Uint8Array;
  uuidLinkage?: Uint8Array;
  lchs?: [number, number, number, number];
  sectorSize?: number;
}

export function buildVdi(s: VdiSpec): Uint8Array {
  const bs = s.blockSize ?? 1024 * 1024;
  const extra = s.blockExtra ?? 0;
  const blocks = s.blocksInImage ?? Math.ceil(s.diskSize / bs);
  const map = s.map ?? [];
  const offBlocks = s.offBlocks ?? 512;
  const offData = Math.ceil((offBlocks + blocks * 4) / 512) * 512;
  const slots = map.filter((e): e is { slot: number; data: Uint8Array } => typeof e === 'object' && 'slot' in e);
  const maxSlot = slots.reduce((m, e) => Math.max(m, e.slot + 1), 0);
  const out = new Uint8Array(offData + maxSlot * (bs + extra));
  const dv = new DataView(out.buffer);
  const text = s.text ?? '<<< Oracle VM VirtualBox Disk Image >>>\n';
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  dv.setUint32(0x40, 0xbeda107f, true);
  dv.setUint32(0x44, s.version ?? 0x00010001, true);
  dv.setUint32(0x48, s.headerSize ?? 0x190, true);
  dv.setUint32(0x4c, s.type ?? 1, true);
  dv.setUint32(0x154, offBlocks, true);
  dv.setUint32(0x158, offData, true);
  dv.setUint32(0x168, s.sectorSize ?? 512, true);
  dv.setBigUint64(0x170, BigInt(s.diskSize), true);
  dv.setUint32(0x178, bs, true);
  dv.setUint32(0x17c, extra, true);
  dv.setUint32(0x180, blocks, true);
  dv.setUint32(0x184, s.blocksAllocated ?? slots.length, true);
  out.set(s.uuidImage ?? new Uint8Array(16).fill(0x11), 0x188);
  out.set(new Uint8Array(16).fill(0x22), 0x198);
  if (s.uuidLinkage) out.set(s.uuidLinkage, 0x1a8);
  if (s.lchs) s.lchs.forEach((v, i) => dv.setUint32(0x1c8 + 4 * i, v, true));
  for (let i = 0; i < blocks; i++) {
    const e = map[i] ?? 'free';
    const v = e === 'free' ? 0xffffffff : e === 'zero' ? 0xfffffffe : 'raw' in e ? e.raw : e.slot;
    dv.setUint32(offBlocks + 4 * i, v, true);
    if (typeof e === 'object' && 'slot' in e) out.set(e.data.subarray(0, bs), offData + e.slot * (bs + extra) + extra);
  }
  return out;
}

/** What the virtual disk holds: allocated blocks' data, zeros elsewhere (cut to the disk size rounded to a sector). */
export function expectedVdi(s: VdiSpec): Uint8Array {
  const bs = s.blockSize ?? 1024 * 1024;
  const size = Math.ceil(s.diskSize / 512) * 512;
  const out = new Uint8Array(size);
  (s.map ?? []).forEach((e, i) => {
    if (typeof e === 'object' && 'slot' in e) out.set(e.data.subarray(0, Math.min(bs, size - i * bs)), i * bs);
  });
  return out;
}
