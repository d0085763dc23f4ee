/**
 * A fixed-size bit set, used for allocation plans (which clusters/blocks of the output will hold
 * data) and for on-disk sector bitmaps. One bit per unit: a 1 TiB disk in 64 KiB clusters is
 * 2 MiB of bitmap, which is the price of planning a one-pass write.
 */
import { LimitExceededError } from '../../errors.js';
import type { Extent } from '../types.js';
import { ceilDiv } from './bounds.js';

/** Plans above this many units are refused rather than allocated (2^32 bits = 512 MiB). */
export const MAX_BITMAP_BITS = 2 ** 32;

export class Bitmap {
  readonly bytes: Uint8Array;
  constructor(readonly size: number) {
    if (size > MAX_BITMAP_BITS) throw new LimitExceededError(`allocation map of ${size} units is too large`, { field: 'allocation map' });
    this.bytes = new Uint8Array(ceilDiv(size, 8));
  }
  get(i: number): boolean {
    return (this.bytes[i >>> 3] & (1 << (i & 7))) !== 0;
  }
  set(i: number): void {
    this.bytes[i >>> 3] |= 1 << (i & 7);
  }
  clear(i: number): void {
    this.bytes[i >>> 3] &= ~(1 << (i & 7));
  }
  setRange(from: number, to: number): void {
    for (let i = from; i < to; i++) this.set(i);
  }
  count(): number {
    let n = 0;
    for (const b of this.bytes) {
      let x = b;
      while (x) {
        x &= x - 1;
        n++;
      }
    }
    return n;
  }
}

/**
 * Which `unit`-sized blocks of the virtual disk hold data, from a reader's allocation map.
 * Used by writers that must lay out their metadata before the first data byte (pipes).
 */
export async function planAllocation(allocation: AsyncIterable<Extent>, unit: number, virtualSize: number): Promise<Bitmap> {
  const bm = new Bitmap(ceilDiv(virtualSize, unit));
  for await (const e of allocation) {
    if (e.kind !== 'data' || e.length <= 0) continue;
    bm.setRange(Math.floor(e.offset / unit), ceilDiv(e.offset + e.length, unit));
  }
  return bm;
}
