/**
 * Atomic output: an image is written under a temporary name in the destination's folder,
 * synced, and renamed to its final name only when complete. Nothing half-written ever carries
 * the final name; an existing file is replaced only when the caller says so (--force).
 * Temporary files still open when the process is interrupted are removed by the handlers that
 * `installCleanupHandlers` sets up (SIGKILL cannot be caught: then only a temp name is left).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { rename, unlink, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError, toIoError } from '../errors.js';
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
    if (!this.force && (await stat(path).then(() => true, () => false))) {
      throw new UsageError(`output ${path} already exists; pass --force to overwrite it`, { file: path });
    }
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

  /** Syncs every file and renames it to its final name. */
  async commit(): Promise<void> {
    if (this.settled) return;
    for (const f of this.files) {
      if (this.durable) await f.sink.sync();
      await f.sink.close();
    }
    for (const f of this.files) {
      try {
        await rename(f.temp, f.final);
      } catch (e) {
        throw toIoError(e, f.final, 'rename into place');
      }
      live.delete(f.temp);
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
      // Without listeners Node restores the default disposition, so the signal raised again kills.
      for (const s of signals) process.removeAllListeners(s);
      process.kill(process.pid, sig);
      process.exit(codes[sig]);
    });
  }
  process.on('exit', removeLiveTempFiles);
}
