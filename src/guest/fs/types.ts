/**
 * The read-only FileSystem contract every filesystem driver (src/guest/fs/<fs>/) implements, and
 * the one registry line that names it. Paths are guest paths: absolute, "/"-separated, resolved
 * inside the filesystem (symlinks, "..", case folding) and never through the host's `path`
 * module, so no guest path can reach the host.
 */
import type { BlockView } from '../view.js';

export type FileKind = 'file' | 'directory' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket';

export interface Stat {
  kind: FileKind;
  /** Permission and type bits as stat(2) gives them (S_IFREG | 0644 …). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** Inode (or its equivalent: FAT directory entry position, NTFS MFT record number). */
  ino: number;
  /** Seconds since the epoch, with fractions where the filesystem keeps them. */
  atime: number;
  mtime: number;
  ctime: number;
  /** Birth time, where the filesystem records one (ext4 crtime, NTFS, FAT creation). */
  btime?: number;
}

export interface DirEntry {
  name: string;
  kind: FileKind;
  ino: number;
}

export interface FileSystem {
  /** blkid's TYPE of the filesystem (ext4, vfat, …). */
  readonly type: string;
  /** Names compare case-insensitively (FAT, NTFS, exFAT). */
  readonly caseFolding: boolean;
  /** Non-fatal observations: a journal needing recovery read without replay, checksum mismatches naming the inode. */
  readonly warnings: string[];
  stat(path: string): Promise<Stat>;
  lstat(path: string): Promise<Stat>;
  readdir(path: string): Promise<DirEntry[]>;
  readlink(path: string): Promise<string>;
  /** Bytes [offset, offset+length) of a regular file, clipped at its end. */
  read(path: string, offset: number, length: number): Promise<Uint8Array>;
  /** The whole file as a stream of chunks, for cat and copy-out. */
  stream(path: string): AsyncIterable<Uint8Array>;
}

/** A filesystem driver: one folder plus one line in the filesystem registry, like an image format. */
export interface FileSystemDriver {
  /** The blkid TYPEs it mounts (ext2, ext3, ext4 for the ext driver). */
  readonly types: readonly string[];
  mount(view: BlockView): Promise<FileSystem>;
}
