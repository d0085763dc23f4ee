import type { ByteSink } from '../../stream/sink.js';
import type { ImageWriter } from '../types.js';

/**
 * Writes the virtual disk byte for byte. Zero runs stay holes on a seekable file that starts
 * empty; `zeroesMustBeWritten` is for writing into an existing target (convert -n), where a
 * skipped range would keep stale bytes. A pipe sink fills gaps with zeros itself.
 */
export class RawWriter implements ImageWriter {
  /** Writes at distinct offsets of a plain file are independent; a pipe sink must stay in order. */
  readonly parallelWrites: number;
  constructor(
    private readonly sink: ByteSink,
    private readonly virtualSize: number,
    private readonly zeroesMustBeWritten = false,
  ) {
    this.parallelWrites = sink.seekable ? 4 : 1;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.sink.write(offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    if (!this.zeroesMustBeWritten) return;
    const chunk = new Uint8Array(Math.min(length, 1 << 20));
    for (let done = 0; done < length; done += chunk.length) {
      await this.sink.write(offset + done, chunk.subarray(0, Math.min(chunk.length, length - done)));
    }
  }

  async finish(): Promise<void> {
    await this.sink.setLength(this.virtualSize);
  }

  async abort(): Promise<void> {}
}
