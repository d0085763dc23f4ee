/**
 * For writers whose formats mark no "reads as zero" state over a parent (VMDK sparse extents
 * without zeroed grains): a skipped grain would show the parent's bytes, so a run that must read
 * as zeros is stored as zeros, and only `leave` keeps a range unallocated.
 */
import { ZERO_CHUNK as ZEROS } from '../../stream/sink.js';
import type { ImageWriter } from '../types.js';

export class OverlayWriter implements ImageWriter {
  readonly blockSize?: number;
  readonly parallelWrites = 1;

  constructor(private readonly inner: ImageWriter) {
    this.blockSize = inner.blockSize;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.inner.write(offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; done += ZEROS.length) {
      await this.inner.write(offset + done, ZEROS.subarray(0, Math.min(ZEROS.length, length - done)));
    }
  }

  /** The inner writer leaves its zero runs unallocated: exactly "defer to the parent". */
  leave(offset: number, length: number): Promise<void> {
    return this.inner.writeZeroes(offset, length);
  }

  finish(): Promise<void> {
    return this.inner.finish();
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }
}
