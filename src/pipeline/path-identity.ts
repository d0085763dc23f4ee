/**
 * Which file a path names, as a key that two paths share exactly when they name the same file:
 * device and inode when the file exists (so hard links, symlinked folders and `..` all
 * collapse), else the real path of its nearest existing folder joined with the rest. Plan
 * validation keys outputs and sources by it, so `out/x.raw` and `outlink/x.raw` (outlink → out)
 * are one file. (A project-wide device+inode helper is being written in the files area; this
 * one stays local to the pipeline until the two are unified.)
 *
 * Calls are synchronous on purpose: validation makes a few of them per disk, each a few
 * microseconds, where a promise round trip through the thread pool costs ten times that, and
 * the plan reader yields to the event loop between chunks anyway.
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
