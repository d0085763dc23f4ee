/**
 * Resume state: which disks are finished, and the files that prove it.
 *
 * The file is JSON lines. Each finished disk (and each disk whose convert stage committed its
 * output) appends one record, written with a single write and fsync'd, so an interruption loses
 * at most the record being written — and a torn last line is ignored when the file is read.
 * At the start of every run the file is compacted (latest record per disk) and replaced
 * atomically through AtomicOutput, so it stays small and is never half-written.
 *
 * A record is trusted only while it still matches the world: the disk's definition must hash
 * to the same fingerprint, and every file it lists must exist with the recorded size and
 * modification time (optionally, its content must hash to the recorded SHA-256 again).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import * as z from 'zod';
import { UsageError, toIoError } from '../errors.js';
import { AtomicOutput } from '../stream/atomic.js';
import type { ResolvedDisk } from './resolve.js';

const fileProof = z.object({ path: z.string(), size: z.number(), mtimeMs: z.number() });
export type FileProof = z.infer<typeof fileProof>;

const recordSchema = z.object({
  disk: z.string(),
  fp: z.string(),
  /** converted: the output is complete, later stages may still be missing; done: every stage succeeded. */
  status: z.enum(['converted', 'done']),
  files: z.array(fileProof),
  /** Virtual-content SHA-256 of `checksumOf`, when a checksum stage ran. */
  sha256: z.string().optional(),
  checksumOf: z.string().optional(),
  at: z.string(),
});
export type StateRecord = z.infer<typeof recordSchema>;

export type ResumeCheck = 'quick' | 'checksum';

function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** What a disk does, hashed: a record for another definition of the disk does not count. */
export function diskFingerprint(d: ResolvedDisk): string {
  const what = { source: d.source, output: d.output, sourceFormat: d.sourceFormat, format: d.format, compress: d.compress, options: d.options, stages: d.stages };
  return createHash('sha256').update(JSON.stringify(stable(what))).digest('hex').slice(0, 32);
}

export async function proveFiles(paths: string[]): Promise<FileProof[]> {
  return Promise.all(
    paths.map(async (path) => {
      const st = await stat(path).catch((e) => Promise.reject(toIoError(e, path, 'stat')));
      return { path, size: st.size, mtimeMs: st.mtimeMs };
    }),
  );
}

/**
 * True when every file still exists with the recorded size and modification time. Times are
 * compared to the millisecond: finer digits do not survive every copy tool and filesystem.
 */
export async function filesUnchanged(files: FileProof[]): Promise<boolean> {
  for (const f of files) {
    const st = await stat(f.path).catch(() => undefined);
    // Within a millisecond: timestamps round-trip through float seconds in utimes() and tar.
    if (!st || !st.isFile() || st.size !== f.size || Math.abs(st.mtimeMs - f.mtimeMs) >= 1) return false;
  }
  return true;
}

async function readRecords(path: string): Promise<Map<string, StateRecord>> {
  const records = new Map<string, StateRecord>();
  const exists = await stat(path).then(() => true, () => false);
  if (!exists) return records;
  const input = createReadStream(path, { encoding: 'utf8' });
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (!line.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue; // a record torn by an interruption: that disk simply runs again
      }
      const r = recordSchema.safeParse(value);
      if (r.success) records.set(r.data.disk, r.data);
    }
  } catch (e) {
    throw toIoError(e, path, 'read state');
  } finally {
    input.destroy();
  }
  return records;
}

/** A lock beside the state file, so two runs of one plan do not both convert its disks. */
async function takeLock(lockPath: string, statePath: string): Promise<void> {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw toIoError(e, lockPath, 'create lock');
    }
    const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    let alive = false;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (alive) throw new UsageError(`another pipeline run (pid ${pid}) is using the state file ${statePath}`, { file: lockPath });
    // The run that held it is gone (killed): the lock is stale.
    await unlink(lockPath).catch(() => {});
  }
  throw new UsageError(`could not take the lock ${lockPath}`, { file: lockPath });
}

export class ResumeState {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly lockPath: string,
    private readonly records: Map<string, StateRecord>,
    private fh: FileHandle | undefined,
  ) {}

  /** Loads and compacts the state at `path` (creating it), and locks it for this run. */
  static async open(path: string): Promise<ResumeState> {
    const lockPath = `${path}.lock`;
    await takeLock(lockPath, path);
    try {
      const records = await readRecords(path);
      const { output, sink } = await AtomicOutput.create(path, { force: true });
      try {
        const text = [...records.values()].map((r) => `${JSON.stringify(r)}\n`).join('');
        await sink.write(0, Buffer.from(text));
        await output.commit();
      } catch (e) {
        await output.discard();
        throw e;
      }
      const fh = await open(path, 'a').catch((e) => Promise.reject(toIoError(e, path, 'open state')));
      return new ResumeState(path, lockPath, records, fh);
    } catch (e) {
      await unlink(lockPath).catch(() => {});
      throw e;
    }
  }

  get size(): number {
    return this.records.size;
  }

  /** The record for this definition of the disk, if any. */
  lookup(disk: ResolvedDisk): StateRecord | undefined {
    const r = this.records.get(disk.id);
    return r && r.fp === diskFingerprint(disk) ? r : undefined;
  }

  /** Appends a record; appends are serialized so concurrent disks never interleave lines. */
  record(rec: StateRecord): Promise<void> {
    this.records.set(rec.disk, rec);
    const line = Buffer.from(`${JSON.stringify(rec)}\n`);
    const next = this.chain.then(async () => {
      if (!this.fh) throw new UsageError('state file is closed', { file: this.path });
      try {
        await this.fh.write(line);
        await this.fh.datasync();
      } catch (e) {
        throw toIoError(e, this.path, 'write state');
      }
    });
    this.chain = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
    await unlink(this.lockPath).catch(() => {});
  }
}
