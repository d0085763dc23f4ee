/**
 * Forward reading of a variable-length table (snapshot table, bitmap directory) through a
 * 64 KiB window, so that 65,536 small entries cost a handful of reads. Bytes past the end of the
 * file read as zeros, as QEMU's file layer returns them: a table that runs past EOF is parsed the
 * way QEMU parses it, and costs no memory for the missing part.
 */
import type { ByteSource } from '../../stream/source.js';

const WINDOW = 64 * 1024;

export class TableCursor {
  private buf = new Uint8Array(WINDOW);
  private bufStart = 0;
  private bufLength = 0;
  /** Set once a read reached past the end of the file. */
  beyondEof = false;

  constructor(
    private readonly source: ByteSource,
    private readonly fileSize: number,
  ) {}

  /** `length` bytes at absolute `offset` (a fresh copy when it spans windows, else a view valid until the next call). */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset + length > this.fileSize) this.beyondEof = true;
    if (offset >= this.bufStart && offset + length <= this.bufStart + this.bufLength) {
      return this.buf.subarray(offset - this.bufStart, offset - this.bufStart + length);
    }
    if (length > WINDOW) {
      const out = new Uint8Array(length);
      await this.fill(offset, out);
      return out;
    }
    this.bufStart = offset;
    this.bufLength = WINDOW;
    await this.fill(offset, this.buf);
    return this.buf.subarray(0, length);
  }

  private async fill(offset: number, into: Uint8Array): Promise<void> {
    const avail = Math.max(0, Math.min(into.length, this.fileSize - offset));
    if (avail > 0) await this.source.read(offset, avail, into.subarray(0, avail));
    if (avail < into.length) into.fill(0, avail);
  }
}
