/** Reading files inside a guest: the FileSystem contract, its drivers and the mount helpers. */
export type { FileSystem, Stat, DirEntry, FileType, Timestamp, ReadStreamOptions, FsDriver, FileSystemDriver } from './types.js';
export { GuestPathError } from './errors.js';
export { FS_DRIVERS, driverFor, mountView } from './registry.js';
export { mount, mountTable, parseMountSpec, type MountSpec, type MountTable } from './mount.js';
export { MAX_SYMLINK_HOPS, splitGuestPath, joinGuestPath } from './path.js';
