/**
 * The FAT boot sector's BIOS parameter block (Microsoft "FAT: General Overview of On-Disk Format"
 * §3) and the geometry derived from it. FAT12/16/32 is decided as Linux's fs/fat/inode.c does:
 * a zero 16-bit FAT size means FAT32, otherwise fewer than 4085 clusters is FAT12.
 */
import { CorruptImageError } from '../../../errors.js';
import { isPowerOfTwo } from '../../../formats/shared/bounds.js';
import { struct, u16le, u32le, u8 } from '../../../formats/shared/struct.js';

export const BPB = struct('FAT boot sector', 512, {
  bytesPerSector: u16le(11),
  sectorsPerCluster: u8(13),
  reservedSectors: u16le(14),
  numFats: u8(16),
  rootEntries: u16le(17),
  totalSectors16: u16le(19),
  fatSize16: u16le(22),
  totalSectors32: u32le(32),
  fatSize32: u32le(36),
  extFlags: u16le(40),
  rootCluster: u32le(44),
  signature: u16le(510),
});

/** Microsoft's limits: fewer than 4085 clusters is FAT12, fewer than 65525 FAT16. */
const FAT12_MAX_CLUSTERS = 4084;

export interface FatGeometry {
  bits: 12 | 16 | 32;
  bytesPerSector: number;
  clusterSize: number;
  /** Byte offset of the FAT in use. */
  fatOffset: number;
  fatBytes: number;
  /** FAT12/16: the fixed root directory region; FAT32 uses rootCluster. */
  rootOffset: number;
  rootBytes: number;
  rootCluster: number;
  dataOffset: number;
  /** Valid data clusters are 2 .. clusterCount+1. */
  clusterCount: number;
}

export function parseBootSector(b: Uint8Array, device: string, deviceSize: number): FatGeometry {
  const p = BPB.parse(b, { file: device });
  const at = (field: keyof typeof BPB.fields) => ({ file: device, field: `BPB_${field}`, offset: BPB.offsetOf(field) });
  const bad = (field: keyof typeof BPB.fields, what: string) => new CorruptImageError(`FAT boot sector: ${what}`, at(field));
  if (![512, 1024, 2048, 4096].includes(p.bytesPerSector)) throw bad('bytesPerSector', `bytes per sector ${p.bytesPerSector} is not 512, 1024, 2048 or 4096`);
  if (!isPowerOfTwo(p.sectorsPerCluster)) throw bad('sectorsPerCluster', `sectors per cluster ${p.sectorsPerCluster} is not a power of two`);
  if (p.reservedSectors < 1) throw bad('reservedSectors', 'no reserved sectors');
  if (p.numFats < 1) throw bad('numFats', 'no FAT');
  const total = p.totalSectors16 || p.totalSectors32;
  const fatSectors = p.fatSize16 || p.fatSize32;
  if (fatSectors < 1) throw bad('fatSize32', 'FAT size is 0');
  const bits: 12 | 16 | 32 = p.fatSize16 === 0 ? 32 : 16;
  const bps = p.bytesPerSector;
  const rootBytes = bits === 32 ? 0 : p.rootEntries * 32;
  const rootSectors = Math.ceil(rootBytes / bps);
  // FAT32 may mirror or pick one active FAT (BPB_ExtFlags bit 7, low nibble); others use the first.
  const activeFat = bits === 32 && p.extFlags & 0x80 ? p.extFlags & 0xf : 0;
  if (activeFat >= p.numFats) throw bad('extFlags', `active FAT ${activeFat} of ${p.numFats}`);
  const firstData = p.reservedSectors + p.numFats * fatSectors + rootSectors;
  if (total <= firstData || total * bps > deviceSize + bps) throw bad('totalSectors32', `${total} sectors do not hold the ${firstData} sectors of FATs and root or do not fit the device (${deviceSize} bytes)`);
  const clusterCount = Math.floor((total - firstData) / p.sectorsPerCluster);
  const realBits = bits === 32 ? 32 : clusterCount <= FAT12_MAX_CLUSTERS ? 12 : 16;
  // The FAT must have an entry for every cluster; a smaller one caps the usable clusters.
  const entries = Math.floor((fatSectors * bps * 8) / realBits);
  if (entries < 3) throw bad('fatSize32', 'FAT too small for any cluster');
  if (bits === 32 && (p.rootCluster < 2 || p.rootCluster > Math.min(clusterCount, entries - 2) + 1)) throw bad('rootCluster', `root cluster ${p.rootCluster} is not a data cluster`);
  return {
    bits: realBits,
    bytesPerSector: bps,
    clusterSize: bps * p.sectorsPerCluster,
    fatOffset: (p.reservedSectors + activeFat * fatSectors) * bps,
    fatBytes: fatSectors * bps,
    rootOffset: (p.reservedSectors + p.numFats * fatSectors) * bps,
    rootBytes,
    rootCluster: bits === 32 ? p.rootCluster : 0,
    dataOffset: firstData * bps,
    clusterCount: Math.min(clusterCount, entries - 2),
  };
}
