/**
 * Hand-built VMDK pieces for what no tool here makes: ESX COWD extents, descriptors mixing extent
 * kinds, hostile descriptors. Written from docs/FORMATS.md §3 and libvmdk's documentation, not from our
 * writer, so that reader and builder do not share mistakes.
 */
import { pseudoRandom } from '../helpers/work.js';

const SECTOR = 512;

export interface CowdSpec {
  capacitySectors: number;
  grainSectors: number;
  /** Grain index → its bytes (grainSectors × 512). */
  grains: Map<number, Uint8Array>;
  parentFileName?: string;
}

/** A COWD file: 2048-byte header, GD at sector 4, 4096-entry GTs, then grains in index order. */
export function buildCowd(spec: CowdSpec): Uint8Array {
  const gtEntries = 4096;
  const gdEntries = Math.ceil(spec.capacitySectors / (gtEntries * spec.grainSectors));
  const gdSector = 4;
  const gdSectors = Math.ceil((gdEntries * 4) / SECTOR);
  const usedGts = [...new Set([...spec.grains.keys()].map((g) => Math.floor(g / gtEntries)))].sort((a, b) => a - b);
  const gtSectors = (gtEntries * 4) / SECTOR;
  const gtAt = new Map<number, number>();
  let next = gdSector + gdSectors;
  for (const t of usedGts) {
    gtAt.set(t, next);
    next += gtSectors;
  }
  const grainAt = new Map<number, number>();
  for (const g of [...spec.grains.keys()].sort((a, b) => a - b)) {
    grainAt.set(g, next);
    next += spec.grainSectors;
  }
  const out = new Uint8Array(next * SECTOR);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from('COWD'), 0);
  dv.setUint32(4, 1, true);
  dv.setUint32(8, 3, true);
  dv.setUint32(12, spec.capacitySectors, true);
  dv.setUint32(16, spec.grainSectors, true);
  dv.setUint32(20, gdSector, true);
  dv.setUint32(24, gdEntries, true);
  dv.setUint32(28, next, true);
  if (spec.parentFileName) out.set(Buffer.from(spec.parentFileName), 32);
  for (const [t, s] of gtAt) dv.setUint32(gdSector * SECTOR + t * 4, s, true);
  for (const [g, s] of grainAt) {
    dv.setUint32(gtAt.get(Math.floor(g / gtEntries))! * SECTOR + (g % gtEntries) * 4, s, true);
    out.set(spec.grains.get(g)!, s * SECTOR);
  }
  return out;
}

/** A descriptor file in VMware's style (encoding line, RDONLY-capable, quoted ddb values). */
export function descriptorText(opts: { createType: string; extents: string[]; cid?: string; parentCID?: string; parentHint?: string; ddb?: Record<string, string> }): string {
  const lines = [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${opts.cid ?? '12345678'}`,
    `parentCID=${opts.parentCID ?? 'ffffffff'}`,
    `createType="${opts.createType}"`,
    ...(opts.parentHint ? [`parentFileNameHint="${opts.parentHint}"`] : []),
    '',
    '# Extent description',
    ...opts.extents,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    ...Object.entries(opts.ddb ?? { 'ddb.adapterType': 'lsilogic', 'ddb.virtualHWVersion': '13' }).map(([k, v]) => `${k} = "${v}"`),
  ];
  return `${lines.join('\n')}\n`;
}

export function grainOf(seed: number, grainSectors: number): Uint8Array {
  return pseudoRandom(grainSectors * SECTOR, seed);
}

export interface SparseSpec {
  capacitySectors: number;
  grainSectors: number;
  gtEntries?: number;
  grains: Map<number, Uint8Array>;
  /** Store grains as zlib data behind grain markers (flags 0x30000, algorithm 1). */
  markers?: boolean;
  /** Also write a redundant directory and tables (flag 0x2). */
  redundant?: boolean;
}

/**
 * A hosted sparse extent with any grain size (qemu-img only makes 128 sectors): header, optional
 * redundant GD+GTs, GD+GTs, grains in index order, each table fully preallocated.
 */
export function buildSparse(spec: SparseSpec, deflate: (b: Uint8Array) => Uint8Array): Uint8Array {
  const gte = spec.gtEntries ?? 512;
  const gtCount = Math.ceil(Math.ceil(spec.capacitySectors / spec.grainSectors) / gte);
  const gdSectors = Math.ceil((gtCount * 4) / SECTOR);
  const gtSectors = Math.ceil((gte * 4) / SECTOR);
  // Sector 1: a one-sector descriptor (QEMU needs its CID line); tables from sector 2.
  const rgd = spec.redundant ? 2 : 0;
  const gd = rgd ? rgd + gdSectors + gtCount * gtSectors : 2;
  let next = gd + gdSectors + gtCount * gtSectors;
  const chunks: Array<[number, Uint8Array]> = [];
  const entries = new Map<number, number>();
  for (const g of [...spec.grains.keys()].sort((a, b) => a - b)) {
    const data = spec.grains.get(g)!;
    let bytes = data;
    if (spec.markers) {
      const z = deflate(data);
      bytes = new Uint8Array(Math.ceil((12 + z.length) / SECTOR) * SECTOR);
      const dv = new DataView(bytes.buffer);
      dv.setBigUint64(0, BigInt(g * spec.grainSectors), true);
      dv.setUint32(8, z.length, true);
      bytes.set(z, 12);
    }
    entries.set(g, next);
    chunks.push([next, bytes]);
    next += Math.ceil(bytes.length / SECTOR);
  }
  const out = new Uint8Array(next * SECTOR);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from('KDMV'));
  dv.setUint32(4, spec.markers ? 3 : 1, true);
  dv.setUint32(8, 1 | (rgd ? 2 : 0) | (spec.markers ? 0x30000 : 0), true);
  dv.setBigUint64(12, BigInt(spec.capacitySectors), true);
  dv.setBigUint64(20, BigInt(spec.grainSectors), true);
  dv.setBigUint64(28, 1n, true);
  dv.setBigUint64(36, 1n, true);
  out.set(Buffer.from('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicSparse"\n'), SECTOR);
  dv.setUint32(44, gte, true);
  dv.setBigUint64(48, BigInt(rgd), true);
  dv.setBigUint64(56, BigInt(gd), true);
  dv.setBigUint64(64, BigInt(gd + gdSectors + gtCount * gtSectors), true);
  out.set([0x0a, 0x20, 0x0d, 0x0a], 73);
  dv.setUint16(77, spec.markers ? 1 : 0, true);
  for (const dir of rgd ? [rgd, gd] : [gd]) {
    for (let t = 0; t < gtCount; t++) dv.setUint32(dir * SECTOR + t * 4, dir + gdSectors + t * gtSectors, true);
    for (const [g, s] of entries) dv.setUint32((dir + gdSectors + Math.floor(g / gte) * gtSectors) * SECTOR + (g % gte) * 4, s, true);
  }
  for (const [s, bytes] of chunks) out.set(bytes, s * SECTOR);
  return out;
}
