/**
 * What `pipeline validate` checks on the machine, beyond the plan's own shape: each source is
 * there and readable, and each output's folder exists or can be created and is writable. These
 * are the failures a run would otherwise meet one disk at a time. `pipeline run` does not make
 * them plan errors: there a missing source fails that disk and the others go on.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PathIdentities, PathIdentity } from '../stream/file-identity.js';

/** Folders already judged, kept while fewer than this. */
const FOLDER_CACHE = 4096;

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? String(e);
}

export class FileChecks {
  private readonly folders = new Map<string, string | null>();

  constructor(private readonly ids: PathIdentities) {}

  /** Why the source cannot be read, if it cannot. */
  source(path: string, id: PathIdentity): string | undefined {
    const st = id.stats;
    if (!st) return `${path} does not exist`;
    if (!st.isFile() && !st.isBlockDevice()) return `${path} is not a regular file or a block device`;
    try {
      accessSync(path, constants.R_OK);
    } catch (e) {
      return `${path} cannot be read (${codeOf(e)})`;
    }
    return undefined;
  }

  /** Why a file could not be written at `path`, if it could not (its folder is created as needed). */
  outputFolder(path: string): string | undefined {
    const folder = dirname(path);
    const hit = this.folders.get(folder);
    if (hit !== undefined) return hit ?? undefined;
    const problem = this.judgeFolder(folder);
    if (this.folders.size >= FOLDER_CACHE) this.folders.clear();
    this.folders.set(folder, problem ?? null);
    return problem;
  }

  private judgeFolder(folder: string): string | undefined {
    const { dir, rest } = this.ids.nearestExisting(folder);
    const what = rest.length ? `the folder ${folder} cannot be created` : `nothing can be written in ${folder}`;
    try {
      if (!statSync(dir).isDirectory()) return `${what}: ${dir} is not a folder`;
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (e) {
      return `${what}: ${dir} is not writable (${codeOf(e)})`;
    }
    return undefined;
  }
}
