/**
 * The copy engine's plan of work, pure and unit-tested on its own: which ranges are data (read and
 * written) and which are not (holes, zeros, ranges left to a base), and how a data run is cut into
 * reads.
 */
import type { Extent } from '../formats/types.js';

export interface Run {
  offset: number;
  length: number;
  data: boolean;
}

/**
 * Merges extents into alternating data / no-data runs, widening data runs to `align` boundaries
 * (clamped to `size`). A long data run is handed over in pieces of about `release` bytes as it
 * grows, so a forward-only reader (a pipe) is asked to read soon after it maps, without holding a
 * whole dense stretch. Pure, so it is unit-tested on its own.
 */
export async function* alignedRuns(extents: AsyncIterable<Extent>, align: number, size: number, release = 8 * 1024 * 1024): AsyncGenerator<Run> {
  let cur: Run | undefined;
  for await (const e of extents) {
    // Later data can only widen back to an aligned boundary at or after cur's end, so an aligned
    // prefix of a data run is final.
    if (cur?.data && cur.length >= release + align) {
      const cut = Math.floor((cur.offset + cur.length - align) / align) * align;
      if (cut > cur.offset) {
        yield { offset: cur.offset, length: cut - cur.offset, data: true };
        cur = { offset: cut, length: cur.offset + cur.length - cut, data: true };
      }
    }
    if (e.length <= 0) continue;
    const data = e.kind === 'data';
    let start = e.offset;
    let end = e.offset + e.length;
    if (data) {
      start = Math.floor(start / align) * align;
      end = Math.min(size, Math.ceil(end / align) * align);
    }
    if (cur) {
      const curEnd = cur.offset + cur.length;
      if (data) {
        if (cur.data) {
          // Overlapping or adjacent data: extend.
          if (start <= curEnd) {
            cur.length = Math.max(curEnd, end) - cur.offset;
            continue;
          }
        } else if (start < curEnd) {
          // Widened data eats into the preceding no-data run.
          cur.length = start - cur.offset;
        }
      } else {
        if (start < curEnd) start = curEnd; // a widened data run already covers this part
        if (end <= start) continue;
        if (!cur.data && start === curEnd) {
          cur.length = end - cur.offset;
          continue;
        }
      }
      if (cur.length > 0) yield cur;
    }
    cur = { offset: start, length: end - start, data };
  }
  if (cur && cur.length > 0) yield cur;
}

/**
 * Every extent as data: with -S 0 (qemu-img: "the destination is fully allocated") holes and zero
 * clusters are read as the zeros they are and written like any other bytes.
 */
export async function* allData(extents: AsyncIterable<Extent>): AsyncGenerator<Extent> {
  for await (const e of extents) yield e.kind === 'data' ? e : { ...e, kind: 'data' };
}

/** The read size: `chunk` rounded down to whole writer units, at least one unit. */
export function chunkLayout(chunk: number, block: number): number {
  return Math.max(block, Math.floor(chunk / block) * block);
}

/**
 * Cuts a data run into reads at absolute multiples of `chunk`, so that the reads of neighbouring
 * runs line up and adjacent clusters coalesce into one big read.
 */
export function* chunkRanges(run: Run, chunk: number): Generator<[number, number]> {
  const end = run.offset + run.length;
  for (let off = run.offset; off < end; ) {
    const next = Math.min(end, (Math.floor(off / chunk) + 1) * chunk);
    yield [off, next];
    off = next;
  }
}
