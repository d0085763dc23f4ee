/**
 * mount(guest, device) → FileSystem, and the mount table of the file commands: `-m DEVICE[:MOUNTPOINT]`
 * as guestfish and virt-cat take it, or the lone filesystem of the guest when none is given.
 */
import { UsageError } from '../../errors.js';
import type { Guest, GuestFilesystem } from '../guest.js';
import { GuestPathError } from './errors.js';
import { joinGuestPath, splitGuestPath } from './path.js';
import { driverFor, mountView } from './registry.js';
import type { FileSystem } from './types.js';

/** Types that hold no files to list (libguestfs skips them the same way when it looks for a root). */
const NOT_FILES = new Set(['swap', 'unknown', 'crypto_LUKS', 'BitLocker', 'jbd']);

function findFilesystem(guest: Guest, device: string): GuestFilesystem {
  const fs = guest.filesystems.find((f) => f.device === device);
  if (!fs) {
    const known = guest.filesystems.map((f) => `${f.device} (${f.type})`).join(', ') || 'none';
    throw new UsageError(`no filesystem on ${device}; the guest's filesystems are: ${known}`);
  }
  return fs;
}

/** The filesystem on `device` (/dev/sda1, /dev/VG/LV) of an opened guest, read-only. */
export async function mount(guest: Guest, device: string): Promise<FileSystem> {
  const fs = findFilesystem(guest, device);
  return mountView(fs.view, fs.type === 'unknown' ? undefined : fs.type);
}

export interface MountSpec {
  device: string;
  mountpoint: string;
}

/** Parses `-m DEVICE[:MOUNTPOINT]` (guestfish's syntax; the mountpoint defaults to /). */
export function parseMountSpec(s: string): MountSpec {
  const colon = s.indexOf(':');
  const device = colon < 0 ? s : s.slice(0, colon);
  const mountpoint = colon < 0 ? '/' : s.slice(colon + 1);
  if (!device.startsWith('/dev/')) throw new UsageError(`-m ${s}: the device must be a guest device name like /dev/sda1 or /dev/VG/LV`);
  if (!mountpoint.startsWith('/')) throw new UsageError(`-m ${s}: the mountpoint must be an absolute guest path`);
  return { device, mountpoint: joinGuestPath(splitGuestPath(mountpoint)) };
}

export interface MountTable {
  mounts: { mountpoint: string; fs: FileSystem }[];
  /** The filesystem holding guest path `path` and the path inside it (longest mountpoint wins, as in the kernel). */
  locate(path: string): { fs: FileSystem; inner: string; mountpoint: string };
}

/** Mounts what `-m` names, or the guest's only filesystem with files; several and no -m is an error that lists them. */
export async function mountTable(guest: Guest, specs: readonly MountSpec[]): Promise<MountTable> {
  let chosen = specs;
  if (chosen.length === 0) {
    const candidates = guest.filesystems.filter((f) => !NOT_FILES.has(f.type));
    if (candidates.length === 0) throw new UsageError(`no filesystem with files found (filesystems: ${guest.filesystems.map((f) => `${f.device} (${f.type})`).join(', ') || 'none'})`);
    if (candidates.length > 1) {
      throw new UsageError(`the guest has several filesystems; choose one with -m DEVICE[:MOUNTPOINT]: ${candidates.map((f) => `${f.device} (${f.type})`).join(', ')}`);
    }
    chosen = [{ device: candidates[0].device, mountpoint: '/' }];
  }
  if (!chosen.some((s) => s.mountpoint === '/')) throw new UsageError('one -m must mount a filesystem on /');
  const mounts: MountTable['mounts'] = [];
  for (const s of chosen) {
    const f = findFilesystem(guest, s.device);
    if (!driverFor(f.type)) throw new UsageError(`${s.device} holds ${f.type}, whose files guestkit cannot read yet`);
    mounts.push({ mountpoint: s.mountpoint, fs: await mount(guest, s.device) });
  }
  mounts.sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  return {
    mounts,
    locate(path: string) {
      if (!path.startsWith('/')) throw new GuestPathError('EINVAL', `guest paths are absolute: ${path}`, path);
      const canon = joinGuestPath(splitGuestPath(path));
      for (const m of mounts) {
        if (m.mountpoint === '/' || canon === m.mountpoint || canon.startsWith(`${m.mountpoint}/`)) {
          return { fs: m.fs, inner: m.mountpoint === '/' ? path : canon.slice(m.mountpoint.length) || '/', mountpoint: m.mountpoint };
        }
      }
      throw new GuestPathError('ENOENT', `nothing is mounted at ${path}`, path);
    },
  };
}
