/** A file split by `ovf:chunkSize` into `disk.vmdk.000000000`, `.000000001`, …: the chunks read as one source. */
import { TruncatedImageError, UsageError } from '../errors.js';
import type { ByteSource } from '../stream/source.js';

export class ConcatSource implements ByteSource {
  readonly seekable: boolean;
  readonly size: number;
  private readonly starts: number[] = [];
  constructor(
    private readonly parts: ByteSource[],
    readonly name: string,
  ) {
    let at = 0;
    for (const p of parts) {
      this.starts.push(at);
      at += p.size ?? 0;
    }
    this.size = at;
    this.seekable = parts.every((p) => p.seekable);
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new UsageError(`invalid read of ${length} bytes at ${offset}`, { file: this.name, offset });
    }
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = into ? into.subarray(0, n) : new Uint8Array(n);
    let done = 0;
    let i = 0;
    while (i + 1 < this.starts.length && this.starts[i + 1]! <= offset) i++;
    while (done < n && i >= 0 && i < this.parts.length) {
      const part = this.parts[i]!;
      const inPart = offset + done - this.starts[i]!;
      const take = Math.min(n - done, (part.size ?? 0) - inPart);
      if (take > 0) await part.read(inPart, take, buf.subarray(done, done + take));
      done += Math.max(0, take);
      i++;
    }
    return buf;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) {
      throw new TruncatedImageError(`unexpected end of chunked file: wanted ${length} bytes at offset ${offset}`, { file: this.name, offset: offset + buf.length });
    }
    return buf;
  }

  async close(): Promise<void> {}
}
