/**
 * A reader seen at a larger virtual size: the image's own content, then, past its end, either
 * another image's bytes at the same offsets (convert -n keeps what an existing target holds past
 * the source's end) or zeros.
 */
import type { Extent, FormatInfo, ImageReader } from '../types.js';

/**
 * Reads `into.length` bytes at `offset` from `reader` as far as its virtual size goes, zeros past
 * it (or everywhere without a reader): a backing image under a larger overlay, a base image.
 */
export async function readZeroExtended(reader: ImageReader | undefined, offset: number, into: Uint8Array): Promise<Uint8Array> {
  const avail = reader ? Math.max(0, Math.min(into.length, reader.virtualSize - offset)) : 0;
  if (avail > 0) await reader!.read(offset, avail, into.subarray(0, avail));
  if (avail < into.length) into.fill(0, avail);
  return into;
}

export class ExtendedReader implements ImageReader {
  readonly format: string;

  constructor(
    private readonly head: ImageReader,
    readonly virtualSize: number,
    private readonly tail?: ImageReader,
  ) {
    this.format = head.format;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into ? into.subarray(0, length) : new Uint8Array(length);
    const split = Math.max(offset, Math.min(offset + length, this.head.virtualSize));
    if (split > offset) await this.head.read(offset, split - offset, buf.subarray(0, split - offset));
    if (split < offset + length) await readZeroExtended(this.tail, split, buf.subarray(split - offset));
    return buf;
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    const end = Math.min(to, this.virtualSize);
    const split = Math.min(end, this.head.virtualSize);
    if (split > from) yield* this.head.extents(from, split);
    let at = Math.max(from, split);
    if (this.tail && at < end) {
      const tailEnd = Math.min(end, this.tail.virtualSize);
      if (tailEnd > at) yield* this.tail.extents(at, tailEnd);
      at = Math.max(at, tailEnd);
    }
    if (at < end) yield { offset: at, length: end - at, kind: 'zero', depth: 0 };
  }

  info(): FormatInfo {
    return { ...this.head.info(), virtualSize: this.virtualSize };
  }

  files(): string[] {
    return [...this.head.files(), ...(this.tail?.files() ?? [])];
  }

  /** Closes neither image: they belong to the caller. */
  async close(): Promise<void> {}
}
