/**
 * The image openers a disk inside an OVA is opened with. They are handed in by formats/open.ts,
 * which calls into the OVA code, rather than imported: the OVA layer sits on top of the format
 * layer, and importing back down would make the two a cycle.
 */
import type { ByteSource } from '../stream/source.js';
import type { ImageReader } from '../formats/types.js';

export interface DiskOpeners {
  /** Opens an image from a seekable source, as formats/open.ts openSource(). */
  openSource(source: ByteSource, opts: { format?: string }): Promise<ImageReader>;
  /** Opens an image arriving on a forward-only source, as formats/open.ts openPipe(). */
  openPipe(source: ByteSource, opts: { format?: string }): Promise<ImageReader>;
}
