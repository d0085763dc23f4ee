import type { ByteSource } from '../../stream/source.js';
import type { Extent, FormatInfo, ImageReader } from '../types.js';

/**
 * A raw image is the virtual disk byte for byte. Node has no SEEK_HOLE/SEEK_DATA, so the whole
 * file is reported as data; the copy engine finds zeros by looking (see README on the cost).
 */
export class RawReader implements ImageReader {
  readonly format = 'raw';
  constructor(
    private readonly source: ByteSource,
    readonly virtualSize: number,
    private readonly path: string | undefined,
  ) {}

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.source.read(offset, length, into);
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    const end = Math.min(to, this.virtualSize);
    if (end > from) yield { offset: from, length: end - from, kind: 'data', depth: 0, hostOffset: from };
  }

  info(): FormatInfo {
    return { format: 'raw', virtualSize: this.virtualSize };
  }

  files(): string[] {
    return this.path ? [this.path] : [];
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
