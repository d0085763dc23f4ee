import { writeZeros, type ByteSink } from '../../stream/sink.js';
import type { ByteSource } from '../../stream/source.js';
import { isZero } from '../../stream/zero.js';
import { WRITES_IN_FLIGHT } from '../shared/write-behind.js';
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
  /** Read-back buffers of the in-place mode, reused: zero runs come many per chunk, several chunks at once. */
  private readonly spare: Uint8Array[] = [];
  constructor(
    private readonly sink: ByteSink,
    private readonly virtualSize: number,
    private readonly zeroesMustBeWritten = false,
    private readonly inPlace?: InPlaceTarget,
  ) {
    this.parallelWrites = sink.seekable ? WRITES_IN_FLIGHT : 1;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.sink.write(offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (this.inPlace) {
      if (!this.inPlace.isZero) await this.clear(this.inPlace.source, offset, length);
      return;
    }
    if (this.zeroesMustBeWritten) await writeZeros(this.sink, offset, length);
  }

  /** Zeroes the pieces of [offset, offset+length) that do not already read as zeros. */
  private async clear(target: ByteSource, offset: number, length: number): Promise<void> {
    const buf = this.spare.pop() ?? new Uint8Array(PIECE);
    try {
      for (let done = 0; done < length; done += PIECE) {
        const n = Math.min(PIECE, length - done);
        const got = await target.readUpTo(offset + done, n, buf);
        if (!isZero(got)) await writeZeros(this.sink, offset + done, n);
      }
    } finally {
      this.spare.push(buf);
    }
  }

  async finish(): Promise<void> {
    // An existing target (perhaps a block device) keeps its length.
    if (!this.inPlace) await this.sink.setLength(this.virtualSize);
  }

  async abort(): Promise<void> {}
}
