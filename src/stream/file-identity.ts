/**
 * Whether two names are one file. Paths cannot tell: a hard link, a symlinked folder or a bind
 * mount gives one file many names, and `realpath` sees through symlinks only. The device and
 * inode numbers can. Used wherever guestkit must not write a file it reads (an output that is a
 * file of the source's chain, a backing chain that loops) and where two outputs must not be one
 * file (pipeline plans).
 *
 * A name that does not exist yet is identified by the nearest folder above it that does (its
 * device and inode) plus the rest of the name, so `out/x.raw` and `outlink/x.raw` (outlink → out)
 * are one output before either is written.
 */
import { statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

/** Device and inode of what `path` names (symlinks followed), or undefined when it does not exist. */
export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * A key equal for two names exactly when they name the same file, or would once it is created:
 * `dev:ino` of the file, or of its nearest existing folder followed by the missing components.
 */
export function fileKey(path: string): string {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    const id = fileIdentity(p);
    if (id) return [`${id.dev}:${id.ino}`, ...missing].join('/');
    if (dirname(p) === p) return resolve(path);
    missing.unshift(basename(p));
  }
}

/** True when `a` and `b` name the same file (or the same not-yet-created name). */
export function sameFile(a: string, b: string): boolean {
  return fileKey(a) === fileKey(b);
}
