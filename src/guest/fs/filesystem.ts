/** The path-level FileSystem over a driver's node-level FsVolume: one resolver and one set of rules for all drivers. */
import { LimitExceededError } from '../../errors.js';
import { GuestPathError } from './errors.js';
import { resolvePath } from './path.js';
import type { DirEntry, FileSystem, FsVolume, ReadStreamOptions, Stat } from './types.js';

/** readFile's default cap: whole-file reads are for small files (configs, os-release); big ones stream. */
export const READ_FILE_MAX = 64 * 1024 * 1024;
export const DEFAULT_CHUNK = 1024 * 1024;
/** Chunks above this would let a caller ask for one giant allocation. */
export const MAX_CHUNK = 16 * 1024 * 1024;

export class GuestFileSystem<N> implements FileSystem {
  constructor(readonly volume: FsVolume<N>) {}

  get type(): string {
    return this.volume.type;
  }
  get device(): string {
    return this.volume.device;
  }
  get caseInsensitive(): boolean {
    return this.volume.caseInsensitive;
  }
  get caseFolding(): boolean {
    return this.volume.caseInsensitive;
  }
  stream(path: string): AsyncIterable<Uint8Array> {
    return this.createReadStream(path);
  }
  get warnings(): readonly string[] {
    return this.volume.warnings;
  }

  async stat(path: string): Promise<Stat> {
    return this.volume.stat((await resolvePath(this.volume, path, true)).node);
  }

  async lstat(path: string): Promise<Stat> {
    return this.volume.stat((await resolvePath(this.volume, path, false)).node);
  }

  async realpath(path: string): Promise<string> {
    return (await resolvePath(this.volume, path, true)).path;
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const { node } = await resolvePath(this.volume, path, true);
    if (this.volume.stat(node).type !== 'directory') throw new GuestPathError('ENOTDIR', `not a directory: ${path}`, path);
    return this.volume.list(node);
  }

  async readlink(path: string): Promise<string> {
    const { node } = await resolvePath(this.volume, path, false);
    if (this.volume.stat(node).type !== 'symlink') throw new GuestPathError('EINVAL', `not a symbolic link: ${path}`, path);
    return this.volume.readlink(node);
  }

  private async regular(path: string): Promise<{ node: N; size: number }> {
    const { node } = await resolvePath(this.volume, path, true);
    const st = this.volume.stat(node);
    if (st.type === 'directory') throw new GuestPathError('EISDIR', `is a directory: ${path}`, path);
    if (st.type !== 'file') throw new GuestPathError('EINVAL', `not a regular file (${st.type}): ${path}`, path);
    return { node, size: st.size };
  }

  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > MAX_CHUNK) {
      throw new GuestPathError('EINVAL', `invalid read of ${length} bytes at ${offset} (at most ${MAX_CHUNK} bytes a read)`, path);
    }
    const { node, size } = await this.regular(path);
    if (offset >= size || length === 0) return new Uint8Array(0);
    return this.volume.readRange(node, offset, Math.min(length, size - offset));
  }

  async readFile(path: string, maxBytes = READ_FILE_MAX): Promise<Uint8Array> {
    const { node, size } = await this.regular(path);
    if (size > maxBytes) throw new LimitExceededError(`${path} is ${size} bytes, more than readFile reads at once; stream it instead`, { file: this.device, field: 'size', offset: undefined });
    if (size === 0) return new Uint8Array(0);
    const out = new Uint8Array(size);
    for (let at = 0; at < size; at += MAX_CHUNK) out.set(await this.volume.readRange(node, at, Math.min(MAX_CHUNK, size - at)), at);
    return out;
  }

  async *createReadStream(path: string, opts: ReadStreamOptions = {}): AsyncIterable<Uint8Array> {
    const { node, size } = await this.regular(path);
    const chunk = opts.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > MAX_CHUNK) throw new GuestPathError('EINVAL', `chunk size ${chunk} is not in 1..${MAX_CHUNK}`, path);
    const start = Math.max(0, opts.start ?? 0);
    const end = Math.min(size, opts.end ?? size);
    for (let at = start; at < end; at += chunk) yield await this.volume.readRange(node, at, Math.min(chunk, end - at));
  }
}
