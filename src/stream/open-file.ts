/**
 * The one way guestkit opens a file it reads an image from: the top-level input, and every file
 * an image names (qcow2 backing and data files, VMDK extents, VHD parents). Only regular files
 * and block devices are images. Anything else is refused *before* it is opened, because opening
 * it can block for ever (a FIFO with no writer blocks open() on a libuv thread, which even
 * process.exit() then waits for) or act on a device (a tape rewinds, a watchdog arms).
 *
 * stat() first, so nothing else is ever opened; then open() with O_NONBLOCK (a FIFO swapped in
 * after the stat cannot block the open) and fstat() the descriptor we got, so what we read is
 * what we checked. O_NONBLOCK changes nothing for reads of regular files and block devices.
 */
import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { IoError, toIoError } from '../errors.js';

export type ImageFileKind = 'file' | 'block device';

export interface OpenedImageFile {
  fh: FileHandle;
  stats: Stats;
  kind: ImageFileKind;
}

function kindOf(st: Stats): string {
  if (st.isFile()) return 'file';
  if (st.isBlockDevice()) return 'block device';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isDirectory()) return 'directory';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** Refuses what is not a regular file or a block device, saying what it is. */
function requireImageFile(st: Stats, name: string): ImageFileKind {
  const kind = kindOf(st);
  if (kind === 'file' || kind === 'block device') return kind;
  if (kind === 'directory') throw new IoError('is a directory, not an image file', { file: name, errno: 'EISDIR' });
  const hint = kind === 'FIFO (named pipe)' ? " (images are read from a pipe only as '-', standard input)" : '';
  // EFTYPE is BSD's "inappropriate file type"; Linux has no errno that says it.
  throw new IoError(`is a ${kind}, not a regular file or block device; refused without opening it${hint}`, { file: name, errno: 'EFTYPE' });
}

/** Called with what was opened, before it is used; throws to refuse it (path confinement). */
export type OpenedCheck = (opened: Stats) => void;

/**
 * Opens `path` for reading (or reading and writing, `r+`) when it is a regular file or a block
 * device; `name` is how messages call it.
 */
export async function openImageFile(path: string, name = path, mode: 'r' | 'r+' = 'r', check?: OpenedCheck): Promise<OpenedImageFile> {
  let before: Stats;
  try {
    before = await stat(path);
  } catch (e) {
    throw toIoError(e, name, 'open');
  }
  requireImageFile(before, name);
  const access = mode === 'r' ? constants.O_RDONLY : constants.O_RDWR;
  let fh: FileHandle;
  try {
    fh = await open(path, access | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw toIoError(e, name, 'open');
  }
  try {
    const stats = await fh.stat();
    const kind = requireImageFile(stats, name);
    check?.(stats);
    return { fh, stats, kind };
  } catch (e) {
    await fh.close().catch(() => {});
    throw toIoError(e, name, 'stat');
  }
}
