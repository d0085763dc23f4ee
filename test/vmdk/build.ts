/**
 * Hand-built VMDK pieces for what no tool here makes: ESX COWD extents, descriptors mixing extent
 * kinds, hostile descriptors. Written from FORMATS.md §3 and libvmdk's documentation, not from our
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
