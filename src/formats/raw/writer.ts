import type { ByteSink } from '../../stream/sink.js';
import type { ByteSource } from '../../stream/source.js';
import { isZero } from '../../stream/zero.js';
import type { ImageWriter } from '../types.js';

/** Writing into an existing raw target (convert -n): the file or device keeps its length. */
export interface InPlaceTarget {
  /** The target read back, to find which zero runs already read as zeros. */
  source: ByteSource;
  /** The caller vouches that the target reads as zeros (--target-is-zero): zero runs are skipped. */
  isZero: boolean;
}

const PIECE = 1 << 20;

/**
 * Writes the virtual disk byte for byte. Zero runs stay holes on a seekable file that starts
 * empty; `zeroesMustBeWritten` writes them out. Into an existing target a skipped range would
 * keep stale bytes, so zero runs are read back and zeroed only where the target holds data:
 * reading (holes read at memory speed) is far cheaper than writing gigabytes of zeros.
 * A pipe sink fills gaps with zeros itself.
 */
export class RawWriter implements ImageWriter {
  /** Writes at distinct offsets of a plain file are independent; a pipe sink must stay in order. */
  readonly parallelWrites: number;
  private zeroPiece?: Uint8Array;
  constructor(
    private readonly sink: ByteSink,
    private readonly virtualSize: number,
    private readonly zeroesMustBeWritten = false,
    private readonly inPlace?: InPlaceTarget,
  ) {
    this.parallelWrites = sink.seekable ? 4 : 1;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.sink.write(offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (this.inPlace) {
      if (!this.inPlace.isZero) await this.clear(this.inPlace.source, offset, length);
      return;
    }
    if (!this.zeroesMustBeWritten) return;
    const zeros = this.zeros();
    for (let done = 0; done < length; done += zeros.length) {
      await this.sink.write(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
    }
  }

  /** Zeroes the pieces of [offset, offset+length) that do not already read as zeros. */
  private async clear(target: ByteSource, offset: number, length: number): Promise<void> {
    const zeros = this.zeros();
    const buf = new Uint8Array(Math.min(PIECE, length)); // per call: writes of several chunks run at once
    for (let done = 0; done < length; done += PIECE) {
      const n = Math.min(PIECE, length - done);
      const got = await target.readUpTo(offset + done, n, buf);
      if (!isZero(got)) await this.sink.write(offset + done, zeros.subarray(0, n));
    }
  }

  private zeros(): Uint8Array {
    return (this.zeroPiece ??= new Uint8Array(PIECE));
  }

  async finish(): Promise<void> {
    // An existing target (perhaps a block device) keeps its length.
    if (!this.inPlace) await this.sink.setLength(this.virtualSize);
  }

  async abort(): Promise<void> {}
}
