/**
 * A ByteSource of any size that holds only a few written ranges: the rest reads as one fill byte,
 * like a sparse file with holes (fill 0) or a table region written with 0xFF. Lets a test state a
 * metadata table of hundreds of millions of entries without the memory or disk it would take.
 * Reads settle without I/O, as reads from a cache would: a walk over it yields to the event loop
 * only if the code walking does.
 */
import { TruncatedImageError } from '../../src/errors.js';
import type { ByteSource } from '../../src/stream/source.js';

export interface Fill {
  from: number;
  to: number;
  byte: number;
}

export class SparseBytes implements ByteSource {
  readonly seekable = true;
  private readonly writes: Array<{ at: number; data: Uint8Array }> = [];
  private readonly fills: Fill[] = [];

  constructor(
    readonly size: number,
    readonly name = 'sparse.img',
  ) {}

  /** Writes `data` at `at` (later writes win). */
  write(at: number, data: Uint8Array): this {
    this.writes.push({ at, data });
    return this;
  }

  /** Makes [from, to) read as `byte` (below any write). */
  fill(from: number, to: number, byte: number): this {
    this.fills.push({ from, to, byte });
    return this;
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = into ? into.subarray(0, n) : new Uint8Array(n);
    out.fill(0);
    const end = offset + n;
    for (const f of this.fills) {
      const a = Math.max(offset, f.from);
      const b = Math.min(end, f.to);
      if (a < b) out.fill(f.byte, a - offset, b - offset);
    }
    for (const w of this.writes) {
      const a = Math.max(offset, w.at);
      const b = Math.min(end, w.at + w.data.length);
      if (a < b) out.set(w.data.subarray(a - w.at, b - w.at), a - offset);
    }
    return out;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = await this.readUpTo(offset, length, into);
    if (out.length !== length) throw new TruncatedImageError(`short read at ${offset}`, { file: this.name, offset });
    return out;
  }

  async close(): Promise<void> {}
}

/** Little- or big-endian u32 fields written into a fresh buffer of `size` bytes. */
export function fields(size: number, values: Array<[number, number, boolean?]>): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  for (const [at, v, be] of values) dv.setUint32(at, v, !be);
  return b;
}
