/**
 * A disk written as a sequence of extents (docs/FORMATS.md §3.1): one sparse extent holding its own
 * descriptor (monolithicSparse), or a descriptor file plus flat or sparse extent files
 * (monolithicFlat, twoGbMaxExtentFlat, twoGbMaxExtentSparse). Blocks arrive in increasing order,
 * so extents are opened one after the other, each when the copy reaches it; every extent file is
 * created even when nothing is written to it, as qemu-img does.
 */
import { UsageError } from '../../errors.js';
import type { ByteSink } from '../../stream/sink.js';
import { writeSkippingZeros } from '../shared/sparse-write.js';
import { WriteBehind, WRITES_IN_FLIGHT } from '../shared/write-behind.js';
import type { ImageWriter } from '../types.js';
import type { ExtentWriter } from './writer-sparse.js';

/** A raw extent: data at its virtual offset; zero pages stay holes in a fresh file, as qemu-img leaves them. */
export class FlatExtentWriter implements ExtentWriter {
  constructor(
    private readonly sink: ByteSink,
    private readonly length: number,
  ) {}

  write(offset: number, data: Uint8Array, behind?: WriteBehind): Promise<void> {
    return writeSkippingZeros(this.sink, offset, data, behind);
  }

  finish(): Promise<void> {
    return this.sink.setLength(this.length);
  }
}

export interface PlannedExtent {
  /** Virtual byte offset and length. */
  start: number;
  length: number;
  open(): Promise<ExtentWriter>;
}

export class ExtentSetWriter implements ImageWriter {
  private current = -1;
  private writer: ExtentWriter | undefined;
  /** Extents are files: several grain runs in flight while the next call is mapped. */
  readonly parallelWrites = WRITES_IN_FLIGHT;
  private readonly behind = new WriteBehind();

  constructor(
    readonly blockSize: number,
    private readonly extents: PlannedExtent[],
    /** Runs after every extent is complete (writes the descriptor file). */
    private readonly onFinish: () => Promise<void>,
  ) {}

  /** Moves to extent `index`, completing (and if need be creating) every extent before it. */
  private async enter(index: number): Promise<ExtentWriter> {
    if (index < this.current) throw new UsageError('VMDK writer: blocks must arrive in increasing order');
    while (this.current < index) {
      // The extent is completed (its length set) only once its data is in.
      await this.behind.settleWrites();
      if (this.writer) await this.writer.finish();
      else if (this.current >= 0) await (await this.extents[this.current].open()).finish();
      this.current++;
      this.writer = undefined;
    }
    this.writer ??= await this.extents[index].open();
    return this.writer;
  }

  private indexAt(offset: number): number {
    let i = Math.max(0, this.current);
    while (i < this.extents.length - 1 && offset >= this.extents[i].start + this.extents[i].length) i++;
    return i;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.behind.call(() => this.place(offset, data));
  }

  private async place(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const i = this.indexAt(at);
      const e = this.extents[i];
      const n = Math.min(data.length - done, e.start + e.length - at);
      const w = await this.enter(i);
      await w.write(at - e.start, data.subarray(done, done + n), this.behind);
      done += n;
    }
  }

  async writeZeroes(): Promise<void> {
    // Extents start out reading as zeros (sparse grains unallocated, flat files holes).
  }

  async finish(): Promise<void> {
    await this.behind.drain();
    if (this.extents.length) {
      await this.enter(this.extents.length - 1);
      await this.writer!.finish();
      this.writer = undefined;
      this.current = this.extents.length;
    }
    await this.onFinish();
  }

  async abort(): Promise<void> {
    await this.behind.drain().catch(() => {});
  }
}
