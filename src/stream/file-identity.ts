/**
 * Whether two names are one file. Paths cannot tell: a hard link, a symlinked folder or a bind
 * mount gives one file many names, and `realpath` sees through symlinks only. The device and
 * inode numbers can. Used wherever guestkit must not write a file it reads (an output that is a
 * file of the source's chain, a backing chain that loops) and where two outputs must not be one
 * file (pipeline plans).
 *
 * An existing file is keyed by device and inode (so hard links, symlinked folders and `..` all
 * collapse); a name not created yet by the real path of its nearest existing folder joined with
 * the rest, so `out/x.raw` and `outlink/x.raw` (outlink → out) are one output before either is
 * written.
 *
 * Calls are synchronous on purpose: plan validation makes a few of them per disk, each a few
 * microseconds, where a promise round trip through the thread pool costs ten times that.
 */
import { realpathSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface PathIdentity {
  key: string;
  /** Present when the path exists (symlinks followed). */
  stats?: BigIntStats;
}

/** Folders resolved, kept while fewer than this: plans put many disks in few folders. */
const DIR_CACHE = 4096;

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class PathIdentities {
  private readonly realDirs = new Map<string, string | null>();

  /** The real path of an existing folder, or null when it does not exist. */
  private realDir(dir: string): string | null {
    const hit = this.realDirs.get(dir);
    if (hit !== undefined) return hit;
    let real: string | null;
    try {
      // A missing folder is common (outputs in folders still to be made): find that out without
      // an exception, which costs ten times the stat.
      real = statSync(dir, { throwIfNoEntry: false }) ? realpathSync(dir) : null;
    } catch (e) {
      // Unreadable on the way (EACCES): the path as written is the best name we have.
      real = isMissing(e) ? null : dir;
    }
    if (this.realDirs.size >= DIR_CACHE) this.realDirs.clear();
    this.realDirs.set(dir, real);
    return real;
  }

  /** The nearest folder of `path` (itself included) that exists, and the part below it. */
  nearestExisting(path: string): { dir: string; rest: string[] } {
    let dir = resolve(path);
    const rest: string[] = [];
    for (;;) {
      const real = this.realDir(dir);
      if (real !== null) return { dir: real, rest };
      const up = dirname(dir);
      if (up === dir) return { dir, rest };
      rest.unshift(basename(dir));
      dir = up;
    }
  }

  identify(path: string): PathIdentity {
    let stats: BigIntStats | undefined;
    try {
      // No exception for a missing file: building one costs more than the stat itself.
      stats = statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch {
      // Not ours to look at (EACCES on the way): named by where it would be, as a missing file is.
    }
    if (stats) return { key: `i:${stats.dev}:${stats.ino}`, stats };
    const { dir, rest } = this.nearestExisting(dirname(resolve(path)));
    return { key: `p:${join(dir, ...rest, basename(path))}` };
  }
}

export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

/** Device and inode of what `path` names (symlinks followed), or undefined when it does not exist. */
export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    return st ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}

/** A key equal for two names exactly when they name the same file, or would once it is created. */
export function fileKey(path: string): string {
  return new PathIdentities().identify(path).key;
}

/** True when `a` and `b` name the same file (or the same not-yet-created name). */
export function sameFile(a: string, b: string): boolean {
  return fileKey(a) === fileKey(b);
}
