/**
 * The sector bitmap in front of each block of a differencing VHD: bit set = the sector is stored
 * in this file, clear = read it from the parent (spec, "Block Bitmap"). Sector 0 of the block is
 * the most significant bit of byte 0 (the order Virtual PC, Hyper-V and libvhdi use).
 */

export function sectorPresent(bitmap: Uint8Array, sector: number): boolean {
  return (bitmap[sector >>> 3] & (0x80 >>> (sector & 7))) !== 0;
}

/**
 * The end (exclusive, at most `to`) of the run of sectors starting at `from` that share the state
 * of sector `from`. Whole bytes of equal bits are skipped at once, so an all-set or all-clear
 * bitmap costs one comparison per 8 sectors and nothing is allocated.
 */
export function sectorRunEnd(bitmap: Uint8Array, from: number, to: number): number {
  const present = sectorPresent(bitmap, from);
  const uniform = present ? 0xff : 0x00;
  let i = from + 1;
  while (i < to) {
    if ((i & 7) === 0 && i + 8 <= to) {
      if (bitmap[i >>> 3] === uniform) {
        i += 8;
        continue;
      }
    }
    if (sectorPresent(bitmap, i) !== present) break;
    i++;
  }
  return i;
}
