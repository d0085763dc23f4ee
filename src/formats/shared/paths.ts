/**
 * Paths found inside images (backing files, VMDK extents, VHD parent locators) are untrusted.
 * They are resolved against the folder of the image that names them and must stay inside it —
 * after following symlinks — unless the caller allows otherwise. A hostile image could otherwise
 * make us read /etc/shadow into a converted disk.
 */
import { realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { ConfinementError, UsageError } from '../../errors.js';
import { realPathOr } from './real-path.js';
import { isUrl } from './url.js';

export interface ConfineOptions {
  /** File that names the path (for messages and as the base of relative names). */
  referrer: string;
  /** What kind of reference this is: "backing file", "extent", "parent locator". */
  what: string;
  allowOutside: boolean;
}

/** Resolves `name` as written in `referrer` and checks that it stays in the referrer's folder. */
export function resolveConfined(name: string, opts: ConfineOptions): string {
  if (name.length === 0 || name.includes('\0')) {
    throw new UsageError(`${opts.what} name is empty or contains a NUL byte`, { file: opts.referrer, field: opts.what });
  }
  if (isUrl(name) && !name.startsWith('file://')) {
    throw new ConfinementError(`${opts.what} '${name}' is a network URL; only local files are supported`, { file: opts.referrer, field: opts.what });
  }
  const plain = name.startsWith('file://') ? decodeURIComponent(name.slice(7)) : name;
  const folder = dirname(resolve(opts.referrer));
  const target = isAbsolute(plain) ? resolve(plain) : resolve(folder, plain);
  if (opts.allowOutside) return target;
  const realFolder = realPathOr(folder);
  const realTarget = realPathOr(target);
  const rel = relative(realFolder, realTarget);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new ConfinementError(
      `${opts.what} '${name}' lies outside the image's folder ${realFolder}; pass --allow-outside (library: allowOutside) if you trust this image`,
      { file: opts.referrer, field: opts.what },
    );
  }
  return target;
}

/**
 * The check FileSource.open runs on a file resolveConfined() accepted: the name is checked again
 * *after* the open, and the file it names now must be the very file that was opened (device and
 * inode). A symlink swapped to point outside between the check and the open is caught either way:
 * still outside, or swapped back and naming another file. Undefined when outside is allowed.
 */
export function openedInside(path: string, opts: ConfineOptions): ((opened: Stats) => void) | undefined {
  if (opts.allowOutside) return undefined;
  return (opened) => {
    resolveConfined(path, opts);
    let now: Stats | undefined;
    try {
      now = statSync(path);
    } catch {
      // gone since the open: not the file that was opened
    }
    if (!now || now.dev !== opened.dev || now.ino !== opened.ino) {
      throw new ConfinementError(`${opts.what} '${path}' was replaced while it was being opened; refused`, { file: opts.referrer, field: opts.what });
    }
  };
}
