/**
 * Byte sources: where a format reader gets its bytes. Random-access sources serve any
 * offset; forward-only sources (pipes) serve increasing offsets only and say so, so that a
 * reader that needs to seek fails with one clear message instead of hanging or misreading.
 * Reads are exact: fewer bytes than asked is a TruncatedImageError naming file and offset.
 */
import { readFile, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { IoError, TruncatedImageError, UsageError, toIoError } from '../errors.js';
import { openImageFile, type OpenedCheck } from './open-file.js';

export interface ByteSource {
  /** Name for messages. */
  readonly name: string;
  /** Total size in bytes, or undefined for a pipe whose end is not known yet. */
  readonly size: number | undefined;
  /** True when reads may go backwards. */
  readonly seekable: boolean;
  /** Reads exactly `length` bytes at `offset` into `into` (or a new buffer). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Reads up to `length` bytes; fewer only at end of data. */
  readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

function checkRequest(name: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new UsageError(`invalid read of ${length} bytes at ${offset}`, { file: name, offset });
  }
}

function short(name: string, offset: number, want: number, got: number): TruncatedImageError {
  return new TruncatedImageError(`unexpected end of file: wanted ${want} bytes at offset ${offset}, got ${got}`, {
    file: name,
    offset: offset + got,
  });
}

/**
 * stat() gives a block device a size of 0; Linux publishes it in /sys (512-byte sectors).
 * rdev is decoded as glibc's gnu_dev_major/minor.
 */
async function blockDeviceSize(rdev: number, name: string): Promise<number> {
  const major = (Math.floor(rdev / 256) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff & 0xfffff);
  try {
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    if (Number.isSafeInteger(sectors) && sectors >= 0) return sectors * 512;
  } catch {
    // fall through
  }
  throw new IoError(`cannot tell the size of block device ${name} (no /sys/dev/block/${major}:${minor}/size)`, { file: name });
}

export class FileSource implements ByteSource {
  readonly seekable = true;
  private constructor(
    readonly name: string,
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string, name = path, check?: OpenedCheck): Promise<FileSource> {
    // Refuses FIFOs, directories and character devices before opening them (open-file.ts).
    const { fh, stats: st } = await openImageFile(path, name, 'r', check);
    try {
      return new FileSource(name, fh, st.isBlockDevice() ? await blockDeviceSize(st.rdev, name) : st.size);
    } catch (e) {
      await fh.close().catch(() => {});
      throw toIoError(e, name, 'stat');
    }
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRequest(this.name, offset, length);
    const buf = into ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(buf, done, length - done, offset + done));
      } catch (e) {
        throw toIoError(e, this.name, 'read', offset + done);
      }
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) throw short(this.name, offset, length, buf.length);
    return buf;
  }

  close(): Promise<void> {
    return this.fh.close().catch(() => {});
  }
}

export class BufferSource implements ByteSource {
  readonly seekable = true;
  constructor(
    private readonly data: Uint8Array,
    readonly name = '<buffer>',
  ) {}
  get size(): number {
    return this.data.length;
  }
  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRequest(this.name, offset, length);
    const end = Math.min(this.data.length, offset + length);
    const n = Math.max(0, end - offset);
    const buf = into ? into.subarray(0, n) : new Uint8Array(n);
    if (n > 0) buf.set(this.data.subarray(offset, end));
    return buf;
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) throw short(this.name, offset, length, buf.length);
    return buf;
  }
  async close(): Promise<void> {}
}

/**
 * A forward-only source over a Node Readable (stdin, a socket, an entry inside an archive).
 * Reads must not go backwards; a read that skips ahead discards what lies between.
 * Only the bytes not yet consumed are buffered, so memory stays at most one read's worth
 * plus one incoming chunk.
 */
export class StreamSource implements ByteSource {
  readonly seekable = false;
  readonly size: number | undefined = undefined;
  private position = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  /**
   * The first bytes that passed through are kept, so that detection can look at the head of a
   * pipe and the reader that follows can still parse its header from offset 0.
   */
  private readonly head: Uint8Array;
  private headLength = 0;
  /** Bytes already consumed, for error messages that report how far a pipe got. */
  get consumed(): number {
    return this.position;
  }

  constructor(
    private readonly stream: Readable,
    readonly name = '<stdin>',
    retainHead = 64 * 1024,
  ) {
    this.head = new Uint8Array(retainHead);
    stream.on('data', (chunk: Buffer) => {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // Backpressure: stop the producer while a full read is already buffered.
      if (this.pendingBytes >= 8 * 1024 * 1024) stream.pause();
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e) => {
      this.error = e;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async fill(need: number): Promise<void> {
    while (this.pendingBytes < need && !this.ended && !this.error) {
      this.stream.resume();
      await new Promise<void>((r) => (this.wake = r));
    }
    if (this.error) throw toIoError(this.error, this.name, 'read', this.position);
  }

  private take(n: number, into: Uint8Array): number {
    let done = 0;
    while (done < n && this.pending.length) {
      const head = this.pending[0];
      const k = Math.min(head.length, n - done);
      into.set(head.subarray(0, k), done);
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
      this.pendingBytes -= k;
      done += k;
    }
    if (this.position < this.head.length) {
      const keep = Math.min(done, this.head.length - this.position);
      this.head.set(into.subarray(0, keep), this.position);
      this.headLength = this.position + keep;
    }
    this.position += done;
    return done;
  }

  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRequest(this.name, offset, length);
    if (offset < this.position && offset + length <= this.headLength) {
      const buf = into ? into.subarray(0, length) : new Uint8Array(length);
      buf.set(this.head.subarray(offset, offset + length));
      return buf;
    }
    if (offset < this.position && offset < this.headLength) {
      // Straddles the retained head and the live stream: serve the head part, then continue.
      const buf = into ? into.subarray(0, length) : new Uint8Array(length);
      const fromHead = this.headLength - offset;
      buf.set(this.head.subarray(offset, this.headLength));
      if (this.position !== this.headLength) {
        throw new IoError(`cannot read backwards in a pipe (offset ${offset}, already at ${this.position}); use a file for this format`, {
          file: this.name,
          offset,
        });
      }
      const rest = await this.readUpTo(this.headLength, length - fromHead, buf.subarray(fromHead));
      return buf.subarray(0, fromHead + rest.length);
    }
    if (offset < this.position) {
      throw new IoError(`cannot read backwards in a pipe (offset ${offset}, already at ${this.position}); use a file for this format`, {
        file: this.name,
        offset,
      });
    }
    // Skip forward in bounded steps so a huge gap never needs a huge buffer.
    const scratch = new Uint8Array(Math.min(1 << 20, Math.max(1, offset - this.position)));
    while (this.position < offset) {
      const step = Math.min(scratch.length, offset - this.position);
      await this.fill(step);
      if (this.take(step, scratch) < step && this.ended) break;
    }
    const buf = into ? into.subarray(0, length) : new Uint8Array(length);
    if (this.position < offset) return buf.subarray(0, 0);
    await this.fill(length);
    const n = this.take(length, buf);
    if (this.pendingBytes < 8 * 1024 * 1024) this.stream.resume();
    return n === length ? buf : buf.subarray(0, n);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) throw short(this.name, offset, length, buf.length);
    return buf;
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}
