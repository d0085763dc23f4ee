/**
 * Atomic output: an image is written under a temporary name in the destination's folder,
 * synced, and given its final name only when complete. Nothing half-written ever carries the
 * final name. An existing file is replaced only when the caller says so (--force): without it the
 * final name is made with link(), which fails when the name exists — also when another process
 * created it while we were writing — so the check and the commit are one atomic step. With
 * --force, rename() replaces whatever is there.
 * Temporary files still open when the process is interrupted are removed by the handlers that
 * `installCleanupHandlers` sets up (SIGKILL cannot be caught: then only a temp name is left).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OutputExistsError, toIoError } from '../errors.js';
import { FileSink, type ByteSink } from './sink.js';

const live = new Set<string>();

function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.guestkit-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

interface Pending {
  final: string;
  temp: string;
  sink: FileSink;
}

export class AtomicOutput {
  private readonly files: Pending[] = [];
  private settled = false;

  private constructor(
    private readonly force: boolean,
    private readonly durable: boolean,
  ) {}

  /**
   * `durable` (default) fsyncs every file before the rename, so a crash after we report success
   * cannot leave a renamed but empty image. `durable: false` is qemu-img's `-t unsafe`.
   */
  static async create(path: string, opts: { force?: boolean; durable?: boolean } = {}): Promise<{ output: AtomicOutput; sink: ByteSink }> {
    const output = new AtomicOutput(opts.force ?? false, opts.durable ?? true);
    const sink = await output.add(path);
    return { output, sink };
  }

  /** Adds another file that is committed or discarded together with the first (split extents). */
  async add(path: string): Promise<ByteSink> {
    // Early, so a conversion does not run for nothing; commit() checks again, atomically. lstat:
    // a dangling symlink is a name link() will not replace either.
    if (!this.force && (await lstat(path).then(() => true, () => false))) throw exists(path);
    const temp = tempNameFor(path);
    live.add(temp);
    try {
      const sink = await FileSink.open(temp, 'wx', path);
      this.files.push({ final: path, temp, sink });
      return sink;
    } catch (e) {
      live.delete(temp);
      throw e;
    }
  }

  /**
   * Syncs every file and gives it its final name. Without --force, when any final name exists by
   * now, none is committed (the ones already placed are removed again) and OutputExistsError is
   * thrown; discard() then removes the temporary files.
   */
  async commit(): Promise<void> {
    if (this.settled) return;
    for (const f of this.files) {
      if (this.durable) await f.sink.sync();
      await f.sink.close();
    }
    if (this.force) {
      for (const f of this.files) {
        try {
          await rename(f.temp, f.final);
        } catch (e) {
          throw toIoError(e, f.final, 'rename into place');
        }
        live.delete(f.temp);
      }
    } else {
      const placed: string[] = [];
      try {
        for (const f of this.files) {
          await placeNew(f.temp, f.final);
          placed.push(f.final);
        }
      } catch (e) {
        // Every placed name was created by us a moment ago (link or O_EXCL cannot take another's).
        for (const p of placed) await unlink(p).catch(() => {});
        throw e;
      }
      for (const f of this.files) {
        await unlink(f.temp).catch(() => {});
        live.delete(f.temp);
      }
    }
    this.settled = true;
  }

  /** Removes every temporary file. Safe to call more than once. */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    for (const f of this.files) {
      await f.sink.close();
      await unlink(f.temp).catch(() => {});
      live.delete(f.temp);
    }
  }
}

function exists(path: string): OutputExistsError {
  return new OutputExistsError(`output ${path} already exists; pass --force to overwrite it`, { file: path });
}

/** What link() says on filesystems that have no hard links (vfat, exFAT, some FUSE and network filesystems). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Gives `temp` the name `final` unless `final` exists. link() does both at once. Where the
 * filesystem has no hard links, the name is taken with an exclusive create (O_EXCL, also atomic)
 * and the complete temporary file renamed over that empty placeholder of ours: for the time of
 * one rename the final name holds an empty file, which the signal handlers remove. (Renaming
 * after checking that the name is free would leave a window in which another writer's file is
 * silently replaced; renameat2's RENAME_NOREPLACE is not reachable from Node.)
 */
async function placeNew(temp: string, final: string): Promise<void> {
  try {
    await link(temp, final);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') throw exists(final);
    if (!NO_HARD_LINKS.has(code)) throw toIoError(e, final, 'link into place');
  }
  try {
    await (await open(final, 'wx')).close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(final);
    throw toIoError(e, final, 'create');
  }
  live.add(final);
  try {
    await rename(temp, final);
  } catch (e) {
    await unlink(final).catch(() => {});
    throw toIoError(e, final, 'rename into place');
  } finally {
    live.delete(final);
  }
}

/** Removes temporary outputs synchronously (for signal and exit handlers). */
export function removeLiveTempFiles(): void {
  for (const t of live) {
    try {
      if (existsSync(t)) unlinkSync(t);
    } catch {
      /* nothing more we can do while exiting */
    }
    live.delete(t);
  }
}

let installed = false;
const beforeSignalDeath = new Set<() => void>();

/**
 * Runs `fn` (synchronously) when a signal is about to end the process, after temporary outputs
 * are removed: the last moment to tell the user how to go on. Returns the unregister function.
 */
export function onSignalDeath(fn: () => void): () => void {
  beforeSignalDeath.add(fn);
  return () => beforeSignalDeath.delete(fn);
}

/**
 * On SIGINT/SIGTERM/SIGHUP: remove temporary outputs, then die of the same signal, as a process
 * without handlers would (shells report 128+signal). Not process.exit(): it joins the libuv
 * threads, and one blocked in a system call (open() of a FIFO, a read from a hung NFS server) makes
 * it wait for ever. A signal whose default action is to terminate ends the process whatever its
 * threads do. process.exit() remains only for a process that ignores the signal by default (PID 1
 * in a container).
 */
export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  const signals = Object.keys(codes) as NodeJS.Signals[];
  for (const sig of signals) {
    process.on(sig, () => {
      removeLiveTempFiles();
      for (const fn of beforeSignalDeath) {
        try {
          fn();
        } catch {
          /* the process is ending: nothing may stop it */
        }
      }
      // Without listeners Node restores the default disposition, so the signal raised again kills.
      for (const s of signals) process.removeAllListeners(s);
      process.kill(process.pid, sig);
      process.exit(codes[sig]);
    });
  }
  process.on('exit', removeLiveTempFiles);
}
