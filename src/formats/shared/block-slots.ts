/**
 * Where each virtual block of an append-only image goes: formats such as dynamic VHD and VDI
 * store allocated blocks one after another behind a table, in the order they were allocated.
 * Two ways to number them:
 *  - on demand, as data arrives (a seekable output: the table is written last);
 *  - from a plan made before the first block (a pipe: the table must precede the data, so the
 *    source's allocation map decides which blocks exist — docs/ARCHITECTURE.md "Writers may be
 *    told the source's allocation map up front").
 * Writers feed blocks in increasing order either way, so the data area ends up in virtual order.
 */
import type { Bitmap } from './bitmap.js';

/** Table value of a block that has no slot. */
export const NO_SLOT = 0xffffffff;

export class BlockSlots {
  private next = 0;

  private constructor(
    /** Slot of each virtual block, NO_SLOT when none. */
    readonly slots: Uint32Array,
    /** When true, only blocks of the plan may receive data. */
    readonly planned: boolean,
  ) {}

  static onDemand(blocks: number): BlockSlots {
    return new BlockSlots(new Uint32Array(blocks).fill(NO_SLOT), false);
  }

  /** Slots numbered in increasing block order over the blocks set in `plan`. */
  static fromPlan(plan: Bitmap): BlockSlots {
    const slots = new Uint32Array(plan.size).fill(NO_SLOT);
    let n = 0;
    for (let i = 0; i < plan.size; i++) if (plan.get(i)) slots[i] = n++;
    const s = new BlockSlots(slots, true);
    s.next = n;
    return s;
  }

  /** Number of blocks with a slot. */
  get count(): number {
    return this.next;
  }

  /**
   * The slot for a block about to be written: allocated now when on demand; for a plan, the
   * planned slot or undefined when the plan has none for it.
   */
  take(block: number): number | undefined {
    const s = this.slots[block];
    if (s !== NO_SLOT) return s;
    if (this.planned) return undefined;
    this.slots[block] = this.next;
    return this.next++;
  }
}
