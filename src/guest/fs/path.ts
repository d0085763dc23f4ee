/**
 * Guest path resolution, shared by every filesystem driver. Guest paths are resolved here, inside
 * the filesystem, and never through the host's `path` module: a guest symlink to /etc/passwd means
 * the guest's /etc/passwd. Rules follow Linux path_resolution(7): `/` is the only separator, `..`
 * at the root stays at the root, `..` after a symlink is taken from the symlink's target, and more
 * than 40 symlinks in one lookup is ELOOP (the kernel's MAXSYMLINKS).
 */
import { GuestPathError } from './errors.js';
import type { FsVolume } from './types.js';

/** Linux's MAXSYMLINKS: how many symlinks one lookup may follow. */
export const MAX_SYMLINK_HOPS = 40;
/** Components walked in one lookup; 40 hops of PATH_MAX-long targets stay well below it. */
export const MAX_LOOKUP_STEPS = 100_000;
/** Linux's PATH_MAX: longer paths (and symlink targets) are refused as ENAMETOOLONG. */
export const PATH_MAX = 4096;

/** The components of a guest path: empty and `.` components dropped, `..` kept for the resolver. */
export function splitGuestPath(path: string): string[] {
  if (path.includes('\0')) throw new GuestPathError('EINVAL', `a guest path cannot contain NUL: ${JSON.stringify(path)}`, path);
  if (path.length > PATH_MAX) throw new GuestPathError('ENAMETOOLONG', `guest path is ${path.length} bytes, longer than PATH_MAX (${PATH_MAX})`, path);
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** Joins components into an absolute guest path. */
export const joinGuestPath = (parts: readonly string[]): string => `/${parts.join('/')}`;

export interface Resolved<N> {
  node: N;
  /** The canonical absolute path: symlinks and `..` resolved. */
  path: string;
}

/**
 * Walks `path` from the root of `vol`. Symlinks in the middle are always followed; the last one
 * only when `followLast` (stat vs lstat). A trailing slash follows the last symlink too, as Linux does.
 */
export async function resolvePath<N>(vol: FsVolume<N>, path: string, followLast: boolean): Promise<Resolved<N>> {
  const root = await vol.root();
  const stack: { name: string; node: N }[] = [];
  // Reversed, so taking the next component and splicing a symlink target in are pops and pushes.
  const pending = splitGuestPath(path).reverse();
  const followFinal = followLast || path.endsWith('/');
  let hops = 0;
  let steps = 0;
  const here = (): N => (stack.length ? stack[stack.length - 1].node : root);
  const shown = (): string => joinGuestPath(stack.map((s) => s.name));
  while (pending.length > 0) {
    if (++steps > MAX_LOOKUP_STEPS) throw new GuestPathError('ELOOP', `lookup of ${path} walks more than ${MAX_LOOKUP_STEPS} components`, path);
    const name = pending.pop()!;
    if (name === '..') {
      stack.pop();
      continue;
    }
    const dir = here();
    if (vol.stat(dir).type !== 'directory') throw new GuestPathError('ENOTDIR', `${shown()} is not a directory (looking up ${path})`, path);
    const child = await vol.lookup(dir, name);
    if (child === undefined) throw new GuestPathError('ENOENT', `no such file or directory: ${path} (${name} is not in ${shown()})`, path);
    if (vol.stat(child).type === 'symlink' && (pending.length > 0 || followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new GuestPathError('ELOOP', `too many levels of symbolic links resolving ${path} (more than ${MAX_SYMLINK_HOPS})`, path);
      }
      const target = await vol.readlink(child);
      if (target === '') throw new GuestPathError('ENOENT', `symlink ${shown()}/${name} is empty`, path);
      if (target.startsWith('/')) stack.length = 0;
      const parts = splitGuestPath(target);
      for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
      continue;
    }
    stack.push({ name, node: child });
  }
  if (followFinal && path.endsWith('/') && vol.stat(here()).type !== 'directory') {
    throw new GuestPathError('ENOTDIR', `${shown()} is not a directory`, path);
  }
  return { node: here(), path: shown() };
}
