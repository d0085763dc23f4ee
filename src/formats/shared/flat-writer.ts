/**
 * The writer of every layout that stores the virtual disk contiguously at a fixed file offset
 * (fixed VHD before its footer, static VDI after its header and map): data goes to
 * `dataOffset + offset`, zero runs stay holes on a file (a pipe sink fills them with zeros), and
 * the format's trailing work runs at finish().
 */
import type { ByteSink } from '../../stream/sink.js';
import type { ImageWriter } from '../types.js';
import { WRITES_IN_FLIGHT } from './write-behind.js';
import { WriteOrder } from './write-order.js';

export class FlatWriter implements ImageWriter {
  private readonly order: WriteOrder;
  /** Each block has its place in a file: several writes may be in flight, as for raw. */
  readonly parallelWrites: number;

  constructor(
    private readonly sink: ByteSink,
    private readonly dataOffset: number,
    virtualSize: number,
    file: string,
    private readonly onFinish: () => Promise<void>,
  ) {
    this.order = new WriteOrder('flat writer', virtualSize, file);
    this.parallelWrites = sink.seekable ? WRITES_IN_FLIGHT : 1;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.order.advance(offset, data.length);
    await this.sink.write(this.dataOffset + offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.order.advance(offset, length);
  }

  async finish(): Promise<void> {
    this.order.finish();
    await this.onFinish();
  }

  async abort(): Promise<void> {
    this.order.close();
  }
}
