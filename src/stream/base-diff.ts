/**
 * What an overlay must store (convert -B): the source's allocation map seen against its future
 * backing image. A range needs comparing where the source has data of its own, or reads zeros
 * over data in the base; everything else already reads the same through the backing file and is
 * left unallocated without being read.
 */
import type { Extent } from '../formats/types.js';

export interface BaseDiffOptions {
  /** Virtual size of the base: past it, the base reads as zeros. */
  baseSize: number;
  /**
   * Source runs answered at this chain depth or deeper come from the base image itself (the
   * source is an overlay of it): they are the same bytes and are skipped unread.
   */
  sharedDepth?: number;
}

/** Yields 'data' for ranges to read and compare, 'zero' for ranges to leave to the base. In order, covering the source. */
export async function* diffAgainstBase(source: AsyncIterable<Extent>, base: AsyncIterable<Extent>, opts: BaseDiffOptions): AsyncGenerator<Extent> {
  const it = base[Symbol.asyncIterator]();
  let b: Extent | undefined;
  let bEnd = 0;
  /** Moves the base cursor to the extent holding `off` (undefined past the base's map). */
  const baseAt = async (off: number): Promise<Extent | undefined> => {
    while (bEnd <= off) {
      const r = await it.next();
      if (r.done) {
        b = undefined;
        bEnd = Infinity;
        break;
      }
      b = r.value;
      bEnd = b.offset + b.length;
    }
    return b;
  };
  const run = (offset: number, end: number, compare: boolean): Extent => ({ offset, length: end - offset, kind: compare ? 'data' : 'zero', depth: 0 });

  try {
    for await (const e of source) {
      const end = e.offset + e.length;
      if (e.length <= 0) continue;
      if (opts.sharedDepth !== undefined && e.depth >= opts.sharedDepth) {
        yield run(e.offset, end, false);
        continue;
      }
      if (e.kind === 'data') {
        yield run(e.offset, end, true);
        continue;
      }
      // The source reads zeros here: only base data can differ.
      let off = e.offset;
      while (off < end) {
        const cur = off < opts.baseSize ? await baseAt(off) : undefined;
        if (!cur) {
          yield run(off, end, false);
          break;
        }
        const pieceEnd = Math.min(end, bEnd, opts.baseSize);
        yield run(off, pieceEnd, cur.kind === 'data');
        off = pieceEnd;
      }
    }
  } finally {
    await it.return?.();
  }
}
