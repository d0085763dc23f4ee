/**
 * The read-only FileSystem contract of the guest wing (docs/ARCHITECTURE.md, "The guest wing").
 * Every driver (ext, fat, …) implements the small node-level `FsVolume`; `GuestFileSystem`
 * (filesystem.ts) turns it into this path-level contract with one shared resolver, so symlink,
 * `..` and loop rules are the same for every filesystem.
 */
import type { BlockView } from '../view.js';

export type FileType = 'file' | 'directory' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'unknown';

/** Seconds since the Unix epoch and nanoseconds, as the filesystem stores them (no float rounding). */
export interface Timestamp {
  sec: number;
  nsec: number;
}

export interface Stat {
  ino: number;
  type: FileType;
  /** st_mode: type bits and permission bits, as `ls -l` and debugfs print them. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  /** Creation time where the filesystem keeps one (ext4 with large inodes, FAT). */
  crtime?: Timestamp;
  /** 512-byte sectors allocated, as st_blocks (sparse files have fewer than size/512). */
  blocks?: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  type: FileType;
}

export interface ReadStreamOptions {
  /** First byte (default 0). */
  start?: number;
  /** One past the last byte (default: the file size). */
  end?: number;
  /** Largest chunk yielded (default 1 MiB); each chunk is a fresh buffer of at most this size. */
  chunkSize?: number;
}

export interface FileSystem {
  /** 'ext2' | 'ext3' | 'ext4' | 'vfat' | … (blkid's TYPE). */
  readonly type: string;
  /** The device it was mounted from (/dev/sda1). */
  readonly device: string;
  /** Names compare without case (FAT): lookups fold case, listings keep the stored case. */
  readonly caseInsensitive: boolean;
  /** The same flag under the name the guest wing's first sketch of this contract gave it. */
  readonly caseFolding: boolean;
  /** Things a reader should know that did not stop it: checksum mismatches, a journal not replayed. */
  readonly warnings: readonly string[];
  stat(path: string): Promise<Stat>;
  lstat(path: string): Promise<Stat>;
  /** Entries of a directory without `.` and `..`, in on-disk order. */
  readdir(path: string): Promise<DirEntry[]>;
  readlink(path: string): Promise<string>;
  /** The path with every symlink resolved inside the filesystem (like realpath(1)). */
  realpath(path: string): Promise<string>;
  /** The file's bytes in chunks; a hole reads as zeros. */
  createReadStream(path: string, opts?: ReadStreamOptions): AsyncIterable<Uint8Array>;
  /** The whole file in chunks (createReadStream with its defaults), for cat and copy-out. */
  stream(path: string): AsyncIterable<Uint8Array>;
  /** Up to `length` bytes at `offset` (fewer at the end of the file). */
  read(path: string, offset: number, length: number): Promise<Uint8Array>;
  /** The whole file, refused above `maxBytes` (default 64 MiB) so a listing tool cannot be made to hold a huge file. */
  readFile(path: string, maxBytes?: number): Promise<Uint8Array>;
}

/**
 * What a driver gives: nodes and their relations, no paths. `N` is the driver's own node handle
 * (an inode for ext, a directory entry for FAT).
 */
export interface FsVolume<N> {
  readonly type: string;
  readonly device: string;
  readonly caseInsensitive: boolean;
  readonly warnings: string[];
  root(): Promise<N>;
  stat(node: N): Stat;
  /** The child named `name` of directory `dir`, or undefined. */
  lookup(dir: N, name: string): Promise<N | undefined>;
  /** Entries of `dir` without `.` and `..`; drivers bound the count. */
  list(dir: N): Promise<DirEntry[]>;
  readlink(node: N): Promise<string>;
  /** Exactly min(length, size-offset) bytes of a regular file at offset; holes are zeros. */
  readRange(node: N, offset: number, length: number): Promise<Uint8Array>;
}

/** A filesystem driver: one object literal and one line in the registry (registry.ts). */
export interface FsDriver {
  /** blkid TYPEs this driver mounts. */
  readonly types: readonly string[];
  mount(view: BlockView, type?: string): Promise<FileSystem>;
}

/** The driver contract under its first sketch's name. */
export type FileSystemDriver = FsDriver;
