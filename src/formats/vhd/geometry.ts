/**
 * CHS geometry and the virtual size of a VHD — the two places where readers disagree, so each
 * rule here is the one qemu 7.2 applies (block/vpc.c), with the reason.
 */
import { fourcc, SECTOR } from './layout.js';

export interface Chs {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

/** 65535 × 16 × 255: the largest geometry a footer can express (qemu VHD_MAX_GEOMETRY). */
export const MAX_GEOMETRY_SECTORS = 65535 * 16 * 255;
/** The largest disk qemu (and the spec's 2040 GB note) allows: 0xff000000 sectors = 2040 GiB. */
export const MAX_SECTORS = 0xff00_0000;
export const MAX_CHS: Chs = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };

export const chsSectors = (g: Chs): number => g.cylinders * g.heads * g.sectorsPerTrack;

/**
 * The spec's appendix algorithm ("CHS Calculation"), identical to qemu's calculate_geometry:
 * the geometry rounds down, so C × H × S ≤ totalSectors.
 */
export function calculateGeometry(totalSectors: number): Chs {
  const total = Math.min(totalSectors, MAX_GEOMETRY_SECTORS);
  let spt: number;
  let heads: number;
  let cylTimesHeads: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cylTimesHeads = Math.floor(total / spt);
  } else {
    spt = 17;
    cylTimesHeads = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cylTimesHeads + 1023) / 1024));
    if (cylTimesHeads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
    if (cylTimesHeads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cylTimesHeads / heads), heads, sectorsPerTrack: spt };
}

export interface CreateGeometry extends Chs {
  /** current_size and original_size of the new image, which is also its virtual size. */
  size: number;
}

/**
 * What `qemu-img create -f vpc` / `convert -O vpc` makes of a requested size (vpc_co_create):
 * the size is first rounded up to a sector; then, without force_size, the smallest geometry
 * whose C × H × S covers it is searched by trying one more sector at a time, and the image gets
 * exactly that many sectors, so that readers going by CHS (Virtual PC, qemu for creator "qemu")
 * see the whole disk — 1 GiB becomes 1 073 995 776 bytes (docs/FORMATS.md §4.7). When the search
 * reaches the maximum geometry, or with force_size, the geometry is 65535/16/255 and the size is
 * kept exact, which readers recognise as "use current_size".
 * Returns undefined when the size exceeds 2040 GiB.
 */
export function createGeometry(requested: number, forceSize: boolean): CreateGeometry | undefined {
  const sectors = Math.ceil(requested / SECTOR);
  let geometry: Chs;
  if (forceSize) {
    geometry = MAX_CHS;
  } else {
    const target = Math.min(MAX_GEOMETRY_SECTORS, sectors);
    geometry = { cylinders: 0, heads: 0, sectorsPerTrack: 0 };
    // Each step moves to the next geometry product at most heads × sectors-per-track (≤ 4080)
    // sectors away, so this loop runs a few thousand times at worst.
    for (let i = 0; target > chsSectors(geometry); i++) geometry = calculateGeometry(target + i);
  }
  const total = chsSectors(geometry) === MAX_GEOMETRY_SECTORS ? sectors : chsSectors(geometry);
  if (total > MAX_SECTORS) return undefined;
  return { ...geometry, size: total * SECTOR };
}

/**
 * Creator applications whose images qemu 7.2 sizes by footer current_size rather than by CHS
 * (vpc_open's table): Hyper-V "win ", qemu with force_size "qem2", Disk2vhd "d2v ",
 * XenConverter "CTXS", XenServer "tap\0". Virtual PC "vpc " and qemu "qemu" (and anything else)
 * go by CHS, because Virtual PC itself sizes disks by geometry and its footers often hold a larger
 * current_size. qemu 7.2 compares "d2v " with a space; older qemu compared "d2v\0".
 */
export const CURRENT_SIZE_CREATORS: readonly number[] = [fourcc('win '), fourcc('qem2'), fourcc('d2v '), fourcc('CTXS'), fourcc('tap\0')];

export type SizeSource = 'chs' | 'current-size';

/**
 * The virtual size exactly as qemu 7.2 decides it:
 *  1. C × H × S × 512;
 *  2. current_size (rounded down to a sector) instead, when the creator is in
 *     CURRENT_SIZE_CREATORS, or when the geometry is the maximum 65535/16/255 (a disk too large
 *     for CHS, whose geometry would otherwise truncate it);
 *  3. above 2040 GiB the image is refused (by the caller).
 * qemu's runtime override force_size_calc is not offered: images carry enough to decide.
 */
export function decideVirtualSize(footer: { creatorApp: number; currentSize: number } & Chs): { sectors: number; source: SizeSource } {
  const chs = chsSectors(footer);
  const useChs = !CURRENT_SIZE_CREATORS.includes(footer.creatorApp);
  if (!useChs || chs === MAX_GEOMETRY_SECTORS) return { sectors: Math.floor(footer.currentSize / SECTOR), source: 'current-size' };
  return { sectors: chs, source: 'chs' };
}
