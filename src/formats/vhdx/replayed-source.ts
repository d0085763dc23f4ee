/**
 * The image file as it would be after its log is replayed, without writing to it: reads come
 * from the file and are patched by the log's writes, in log order (later writes win), and the file
 * reads as longer (zeros) when the log extended it.
 */
import { UsageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import type { LogReplay, LogWrite } from './log.js';

export class ReplayedSource implements ByteSource {
  readonly seekable = true;
  readonly size: number;
  readonly name: string;

  constructor(
    private readonly inner: ByteSource,
    private readonly writes: readonly LogWrite[],
    lastFileOffset: number,
  ) {
    this.name = inner.name;
    this.size = Math.max(inner.size ?? 0, lastFileOffset);
  }

  static wrap(inner: ByteSource, replay: LogReplay | undefined): ByteSource {
    return replay && replay.writes.length ? new ReplayedSource(inner, replay.writes, replay.lastFileOffset) : inner;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new UsageError(`invalid read of ${length} bytes at ${offset}`, { file: this.name, offset });
    }
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    const innerSize = this.inner.size ?? 0;
    const fromFile = Math.max(0, Math.min(length, innerSize - offset));
    if (fromFile > 0) await this.inner.read(offset, fromFile, out.subarray(0, fromFile));
    out.fill(0, fromFile);
    const end = offset + length;
    for (const w of this.writes) {
      const a = Math.max(offset, w.fileOffset);
      const b = Math.min(end, w.fileOffset + w.length);
      if (a >= b) continue;
      if (w.data) out.set(w.data.subarray(a - w.fileOffset, b - w.fileOffset), a - offset);
      else out.fill(0, a - offset, b - offset);
    }
    return out;
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.read(offset, Math.max(0, Math.min(length, this.size - offset)), into);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
