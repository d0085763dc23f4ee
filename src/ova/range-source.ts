/**
 * A tar member is a byte range of the OVA: this view makes it a ByteSource of its own, so every
 * existing format reader (streamOptimized VMDK above all) reads a disk inside an OVA with no copy.
 */
import { TruncatedImageError, UsageError } from '../errors.js';
import type { ByteSource } from '../stream/source.js';

export class RangeSource implements ByteSource {
  readonly seekable: boolean;
  constructor(
    private readonly outer: ByteSource,
    private readonly start: number,
    readonly size: number,
    readonly name: string,
  ) {
    this.seekable = outer.seekable;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new UsageError(`invalid read of ${length} bytes at ${offset}`, { file: this.name, offset });
    }
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, length);
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0) return into ? into.subarray(0, 0) : new Uint8Array(0);
    return this.outer.readUpTo(this.start + offset, n, into);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, length);
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) {
      throw new TruncatedImageError(`unexpected end of tar member: wanted ${length} bytes at offset ${offset}, member has ${this.size}`, {
        file: this.name,
        offset: offset + buf.length,
      });
    }
    return buf;
  }

  /** The OVA owns the underlying file; closing one disk must not close the others. */
  async close(): Promise<void> {}
}
