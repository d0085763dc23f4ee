/**
 * Byte sinks: where a format writer puts its bytes. A file sink takes any offset and leaves
 * holes where nothing is written; a pipe sink takes increasing offsets only and fills gaps with
 * zero bytes, since a pipe cannot hold a hole.
 */
import { open as fsOpen, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { IoError, toIoError } from '../errors.js';

export interface ByteSink {
  readonly name: string;
  /** True when writes may go backwards and holes are possible. */
  readonly seekable: boolean;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Sets the final length: truncates or extends a file (sparsely), pads a pipe with zeros. */
  setLength(length: number): Promise<void>;
  /** Flushes to stable storage where that means anything. */
  sync(): Promise<void>;
  close(): Promise<void>;
  /**
   * The image written here is to be fully allocated (convert -S 0, as qemu-img): writers store
   * every unit, zeros included, and write zero bytes rather than leave holes.
   */
  readonly fullyAllocated?: boolean;
}

/** `sink`, marked so that the writers on it allocate everything (see ByteSink.fullyAllocated). */
export function fullyAllocated(sink: ByteSink): ByteSink {
  return {
    name: sink.name,
    seekable: sink.seekable,
    fullyAllocated: true,
    write: (offset, data) => sink.write(offset, data),
    setLength: (length) => sink.setLength(length),
    sync: () => sink.sync(),
    close: () => sink.close(),
  };
}

export class FileSink implements ByteSink {
  readonly seekable = true;
  private constructor(
    readonly name: string,
    private readonly fh: FileHandle,
  ) {}

  /** `flags` 'wx' refuses an existing file; 'r+' writes into an existing one. */
  static async open(path: string, flags: 'wx' | 'w' | 'r+' = 'wx', name = path): Promise<FileSink> {
    try {
      return new FileSink(name, await fsOpen(path, flags, 0o644));
    } catch (e) {
      throw toIoError(e, name, 'open for writing');
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      try {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      } catch (e) {
        throw toIoError(e, this.name, 'write', offset + done);
      }
    }
  }

  async setLength(length: number): Promise<void> {
    try {
      await this.fh.truncate(length);
    } catch (e) {
      throw toIoError(e, this.name, 'truncate', length);
    }
  }

  async sync(): Promise<void> {
    try {
      await this.fh.sync();
    } catch (e) {
      throw toIoError(e, this.name, 'fsync');
    }
  }

  close(): Promise<void> {
    return this.fh.close().catch(() => {});
  }
}

/** A megabyte of zeros shared by everything that writes zeros; never written to. */
export const ZERO_CHUNK = new Uint8Array(1 << 20);

/** Writes `length` zero bytes at `offset`, a megabyte at a time, from the shared zero page. */
export async function writeZeros(sink: ByteSink, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; done += ZERO_CHUNK.length) {
    await sink.write(offset + done, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, length - done)));
  }
}

/** Streams an image is being written to right now (see imageInProgress). */
const imageStreams = new Set<Writable>();

/**
 * Whether an image is being written to `stream` and is not complete yet. A reader that goes away
 * early from text output (`map | head`) got what it wanted; from an image it did not, and the
 * command must fail (the StreamSink reports it).
 */
export function imageInProgress(stream: Writable): boolean {
  return imageStreams.has(stream);
}

/**
 * A forward-only sink over a Node Writable (stdout). Awaiting each write is its backpressure.
 * A write that fails (the reader closed the pipe: EPIPE) fails every later write and close(), so
 * an image cut short can never end in success, even when the failing write had been buffered.
 */
export class StreamSink implements ByteSink {
  readonly seekable = false;
  private position = 0;
  private failure: IoError | undefined;
  constructor(
    private readonly stream: Writable,
    readonly name = '<stdout>',
  ) {
    imageStreams.add(stream);
  }

  private failed(e: unknown, at: number): IoError {
    const errno = (e as NodeJS.ErrnoException)?.code;
    if (errno === 'EPIPE' || errno === 'ERR_STREAM_DESTROYED' || errno === 'ERR_STREAM_WRITE_AFTER_END') {
      this.failure ??= new IoError('the reader closed the pipe before the image was complete', { file: this.name, offset: at, errno: 'EPIPE', cause: e });
    } else {
      this.failure ??= toIoError(e, this.name, 'write', at) as IoError;
    }
    return this.failure;
  }

  private push(data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const at = this.position;
    return new Promise((resolve, reject) => {
      const ok = this.stream.write(data, (e) => (e ? reject(this.failed(e, at)) : undefined));
      this.position += data.length;
      if (ok) resolve();
      else {
        const onError = (e: Error) => reject(this.failed(e, at));
        this.stream.once('error', onError);
        this.stream.once('drain', () => {
          this.stream.off('error', onError);
          resolve();
        });
      }
    });
  }

  private async padTo(offset: number): Promise<void> {
    while (this.position < offset) {
      await this.push(ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, offset - this.position)));
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset < this.position) {
      throw new IoError(`cannot write backwards to a pipe (offset ${offset}, already at ${this.position})`, { file: this.name, offset });
    }
    await this.padTo(offset);
    // Copy: the caller may reuse its buffer as soon as we return, but the stream may still hold it.
    await this.push(Uint8Array.prototype.slice.call(data));
  }

  async setLength(length: number): Promise<void> {
    if (length < this.position) throw new IoError(`cannot shorten a pipe to ${length} bytes`, { file: this.name });
    await this.padTo(length);
  }

  async sync(): Promise<void> {}

  /** Resolves once every byte has been handed to the pipe; rejects if any write failed. */
  async close(): Promise<void> {
    try {
      // Writes the stream buffered report their failure only when they are flushed.
      if (!this.failure && this.stream.writableLength > 0 && !this.stream.destroyed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.stream.off('drain', done);
            this.stream.off('error', onError);
            resolve();
          };
          const onError = (e: Error) => {
            this.failed(e, this.position);
            done();
          };
          this.stream.once('drain', done);
          this.stream.once('error', onError);
        });
      }
      if (this.failure) throw this.failure;
      if (this.stream !== process.stdout) await new Promise<void>((r) => this.stream.end(r));
    } finally {
      imageStreams.delete(this.stream);
    }
  }
}

export class BufferSink implements ByteSink {
  readonly seekable = true;
  private data = new Uint8Array(0);
  private length = 0;
  constructor(readonly name = '<buffer>') {}
  private ensure(n: number): void {
    if (n <= this.data.length) return;
    const next = new Uint8Array(Math.max(n, this.data.length * 2));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.ensure(offset + data.length);
    this.data.set(data, offset);
    this.length = Math.max(this.length, offset + data.length);
  }
  async setLength(length: number): Promise<void> {
    this.ensure(length);
    if (length < this.length) this.data.fill(0, length, this.length);
    this.length = length;
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
  bytes(): Uint8Array {
    return this.data.subarray(0, this.length);
  }
}
