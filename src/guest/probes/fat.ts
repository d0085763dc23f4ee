/**
 * FAT12/16/32 as libblkid's superblocks/vfat.c identifies it: FAT type by cluster count, UUID from
 * the volume serial ("XXXX-XXXX"), LABEL from the root directory's volume-label entry, else the
 * boot sector's (LABEL_FATBOOT), "NO NAME" meaning none.
 */
import { LimitExceededError } from '../../errors.js';
import { dv, isPowerOfTwo, latin1, readAt, rtrim, startsWith } from './bytes.js';
import type { Probe, ProbeHit } from './types.js';

const NO_NAME = 'NO NAME    ';
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIR = 0x10;
const ATTR_LONG_NAME = 0x0f;
const FAT12_MAX = 0xff4;
const FAT16_MAX = 0xfff4;
/** blkid walks at most this many root-directory clusters of FAT32 looking for the label; so do we. */
export const MAX_ROOT_CLUSTERS = 100;
/** Reading a whole directory cluster at a time: 64 KiB is the largest FAT cluster Windows makes (256 KiB exists, rarely). */
const MAX_CLUSTER_BYTES = 256 * 1024;

export interface FatGeometry {
  sectorSize: number;
  clusterSize: number;
  reserved: number;
  fats: number;
  rootEntries: number;
  sectors: number;
  fatLength: number;
  kind: 'FAT12' | 'FAT16' | 'FAT32';
  clusters: number;
}

/** The boot-sector fields blkid checks, or undefined when they are not a FAT's. */
export function fatGeometry(bs: Uint8Array): FatGeometry | undefined {
  const d = dv(bs);
  const msMagic = ['MSWIN', 'FAT32   '].some((m) => startsWith(bs, 0x52, m)) || ['MSDOS', 'FAT16   ', 'FAT12   ', 'FAT     '].some((m) => startsWith(bs, 0x36, m));
  const jump = (bs[0] === 0xeb && bs[2] === 0x90) || bs[0] === 0xe9;
  if (!msMagic && !(jump && bs[510] === 0x55 && bs[511] === 0xaa)) return undefined;
  const media = bs[21];
  if (media !== 0xf0 && media < 0xf8) return undefined;
  const sectorSize = d.getUint16(11, true);
  const clusterSectors = bs[13];
  const reserved = d.getUint16(14, true);
  const fats = bs[16];
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 4096) return undefined;
  if (!isPowerOfTwo(clusterSectors) || reserved === 0 || fats === 0) return undefined;
  const rootEntries = d.getUint16(17, true);
  const sectors = d.getUint16(19, true) || d.getUint32(32, true);
  const fatLength16 = d.getUint16(22, true);
  const fatLength = fatLength16 || d.getUint32(36, true);
  const dirSectors = Math.ceil((rootEntries * 32) / sectorSize);
  const dataSectors = sectors - reserved - fats * fatLength - dirSectors;
  if (dataSectors <= 0) return undefined;
  const clusters = Math.floor(dataSectors / clusterSectors);
  let kind: FatGeometry['kind'];
  if (fatLength16 === 0) kind = 'FAT32';
  else if (clusters < FAT12_MAX) kind = 'FAT12';
  else if (clusters < FAT16_MAX) kind = 'FAT16';
  else return undefined;
  return { sectorSize, clusterSize: clusterSectors * sectorSize, reserved, fats, rootEntries, sectors, fatLength, kind, clusters };
}

/** The volume-label entry of a directory block: the text, null when the block ends the directory, undefined to read on. */
function labelIn(dir: Uint8Array): string | null | undefined {
  for (let at = 0; at + 32 <= dir.length; at += 32) {
    const first = dir[at];
    if (first === 0) return null;
    if (first === 0xe5) continue;
    const attr = dir[at + 11];
    if ((attr & ATTR_LONG_NAME) === ATTR_LONG_NAME) continue;
    if ((attr & (ATTR_VOLUME_ID | ATTR_DIR)) !== ATTR_VOLUME_ID) continue;
    const name = dir.slice(at, at + 11);
    if (name[0] === 0x05) name[0] = 0xe5;
    return latin1(name);
  }
  return undefined;
}

async function rootLabel(view: Parameters<Probe['probe']>[0], bs: Uint8Array, g: FatGeometry): Promise<string | undefined> {
  const fatStart = g.reserved * g.sectorSize;
  const rootStart = fatStart + g.fats * g.fatLength * g.sectorSize;
  if (g.kind !== 'FAT32') {
    const dir = await readAt(view, rootStart, g.rootEntries * 32);
    return dir ? (labelIn(dir) ?? undefined) : undefined;
  }
  if (g.clusterSize > MAX_CLUSTER_BYTES) throw new LimitExceededError(`FAT cluster size ${g.clusterSize} is larger than ${MAX_CLUSTER_BYTES}`, { file: view.name, field: 'sectors per cluster', offset: 13 });
  let cluster = dv(bs).getUint32(44, true) & 0x0fffffff;
  for (let i = 0; i < MAX_ROOT_CLUSTERS && cluster >= 2 && cluster < 0x0ffffff7; i++) {
    const dir = await readAt(view, rootStart + (cluster - 2) * g.clusterSize, g.clusterSize);
    if (!dir) return undefined;
    const found = labelIn(dir);
    if (found !== undefined) return found ?? undefined;
    const next = await readAt(view, fatStart + cluster * 4, 4);
    if (!next) return undefined;
    cluster = dv(next).getUint32(0, true) & 0x0fffffff;
  }
  return undefined;
}

export const fatProbe: Probe = {
  name: 'vfat',
  async probe(view) {
    const bs = await readAt(view, 0, 512);
    if (!bs) return undefined;
    const g = fatGeometry(bs);
    if (!g) return undefined;
    // The extended boot record sits at 0x26 on FAT12/16 and at 0x42 on FAT32; signature 0x28 or 0x29.
    const ebr = g.kind === 'FAT32' ? 0x42 : 0x26;
    const hasEbr = bs[ebr] === 0x28 || bs[ebr] === 0x29;
    const serial = hasEbr ? bs.subarray(ebr + 1, ebr + 5) : undefined;
    const bootLabel = bs[ebr] === 0x29 ? latin1(bs.subarray(ebr + 5, ebr + 16)) : undefined;
    const dirLabel = await rootLabel(view, bs, g);
    const hit: ProbeHit = { score: 100, type: 'vfat', usage: 'filesystem', version: g.kind, blockSize: g.sectorSize, size: g.sectors * g.sectorSize, extra: {} };
    if (g.kind !== 'FAT32') hit.extra!.SEC_TYPE = 'msdos';
    if (bootLabel !== undefined && bootLabel !== NO_NAME) hit.extra!.LABEL_FATBOOT = rtrim(bootLabel);
    const label = dirLabel !== undefined && dirLabel !== NO_NAME ? dirLabel : bootLabel !== undefined && bootLabel !== NO_NAME ? bootLabel : undefined;
    if (label !== undefined && rtrim(label)) hit.label = rtrim(label);
    if (serial) {
      const h = (i: number) => serial[i].toString(16).toUpperCase().padStart(2, '0');
      hit.uuid = `${h(3)}${h(2)}-${h(1)}${h(0)}`;
    }
    return hit;
  },
};
