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
import * as z from 'zod';
import { UsageError, toIoError } from '../errors.js';
import { AtomicOutput } from '../stream/atomic.js';
import { CompactIndex } from './compact-index.js';
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

const COMPACT_BATCH = 1024 * 1024;

/** A record line longer than this is not one we wrote: it is skipped as damaged. */
const MAX_RECORD_BYTES = 1024 * 1024;

function parseRecord(line: Buffer | string): StateRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.toString());
  } catch {
    return undefined; // a record torn by an interruption: that disk simply runs again
  }
  const r = recordSchema.safeParse(value);
  return r.success ? r.data : undefined;
}

/**
 * Where each disk's latest record sits in a state file: a digest of the disk id maps to a slot,
 * and the slot to the record's offset and length. Records themselves stay on disk and are read
 * back when a disk is looked up, so a state of half a million finished disks costs tens of
 * bytes each in memory, not the records.
 */
class RecordIndex {
  private readonly ids = new CompactIndex();
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);

  get size(): number {
    return this.ids.size;
  }

  set(id: string, offset: number, length: number): void {
    const slot = this.ids.setIfAbsent(id, this.ids.size) ?? this.ids.size - 1;
    if (slot >= this.offsets.length) {
      const offsets = new Float64Array(this.offsets.length * 2);
      offsets.set(this.offsets);
      const lengths = new Uint32Array(this.lengths.length * 2);
      lengths.set(this.lengths);
      this.offsets = offsets;
      this.lengths = lengths;
    }
    this.offsets[slot] = offset;
    this.lengths[slot] = length;
  }

  get(id: string): { offset: number; length: number } | undefined {
    const slot = this.ids.get(id);
    return slot === undefined ? undefined : { offset: this.offsets[slot], length: this.lengths[slot] };
  }
}

/**
 * The lines of a state file with their byte offsets, read sequentially in chunks. A line longer
 * than MAX_RECORD_BYTES is not one we wrote: it is skipped without being held whole.
 */
async function* linesOf(path: string): AsyncGenerator<{ line: Buffer; offset: number }> {
  const input = createReadStream(path);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineStart = 0;
  let pos = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let from = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
        const piece = chunk.subarray(from, nl);
        if (pendingBytes + piece.length <= MAX_RECORD_BYTES) yield { line: pending.length ? Buffer.concat([...pending, piece]) : piece, offset: lineStart };
        pending = [];
        pendingBytes = 0;
        from = nl + 1;
        lineStart = pos + from;
      }
      const rest = chunk.subarray(from);
      if (pendingBytes + rest.length <= MAX_RECORD_BYTES) pending.push(Buffer.from(rest));
      else pending = [];
      pendingBytes += rest.length;
      pos += chunk.length;
    }
    if (pendingBytes && pendingBytes <= MAX_RECORD_BYTES) yield { line: Buffer.concat(pending), offset: lineStart };
  } catch (e) {
    throw toIoError(e, path, 'read state');
  } finally {
    input.destroy();
  }
}

/** Indexes the valid records of a state file (the latest per disk). */
async function indexRecords(path: string): Promise<RecordIndex> {
  const index = new RecordIndex();
  if (!(await stat(path).then(() => true, () => false))) return index;
  for await (const { line, offset } of linesOf(path)) {
    const rec = parseRecord(line);
    if (rec) index.set(rec.disk, offset, line.length);
  }
  return index;
}

/**
 * Writes the latest record of each disk into a fresh file that replaces `path` atomically, and
 * returns the index of the new file. The old file is read again from start to end (a record is
 * kept when it is the one the index points at), which is far faster than reading each record
 * where it lies.
 */
async function compact(path: string, old: RecordIndex): Promise<RecordIndex> {
  const fresh = new RecordIndex();
  const { output, sink } = await AtomicOutput.create(path, { force: true });
  try {
    // Written a batch at a time: one write per record would be a system call per disk.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let written = 0;
    const flush = async () => {
      await sink.write(written, Buffer.concat(batch));
      written += batchBytes;
      batch = [];
      batchBytes = 0;
    };
    if (old.size) {
      for await (const { line, offset } of linesOf(path)) {
        const id = idOf(line);
        if (id === undefined || old.get(id)?.offset !== offset) continue;
        fresh.set(id, written + batchBytes, line.length);
        batch.push(Buffer.from(line), NEWLINE);
        batchBytes += line.length + 1;
        if (batchBytes >= COMPACT_BATCH) await flush();
      }
    }
    if (batchBytes) await flush();
    await output.commit();
  } catch (e) {
    await output.discard();
    throw toIoError(e, path, 'compact state');
  }
  return fresh;
}

/** The disk a line that was indexed belongs to (it was checked whole when it was indexed). */
function idOf(line: Buffer): string | undefined {
  try {
    const disk = (JSON.parse(line.toString()) as { disk?: unknown }).disk;
    return typeof disk === 'string' ? disk : undefined;
  } catch {
    return undefined;
  }
}

const NEWLINE = Buffer.from('\n');

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

  /**
   * `index` covers the records of earlier runs only: ids are unique within a plan, so a disk
   * recorded in this run is never looked up again in it, and its record need not be kept.
   */
  private constructor(
    readonly path: string,
    private readonly lockPath: string,
    private readonly index: RecordIndex,
    private reader: FileHandle | undefined,
    private fh: FileHandle | undefined,
  ) {}

  /** Loads and compacts the state at `path` (creating it), and locks it for this run. */
  static async open(path: string): Promise<ResumeState> {
    const lockPath = `${path}.lock`;
    await takeLock(lockPath, path);
    let reader: FileHandle | undefined;
    try {
      const index = await compact(path, await indexRecords(path));
      reader = await open(path, 'r').catch((e) => Promise.reject(toIoError(e, path, 'open state')));
      const fh = await open(path, 'a').catch((e) => Promise.reject(toIoError(e, path, 'open state')));
      return new ResumeState(path, lockPath, index, reader, fh);
    } catch (e) {
      await reader?.close();
      await unlink(lockPath).catch(() => {});
      throw e;
    }
  }

  /** Disks with a record from an earlier run. */
  get size(): number {
    return this.index.size;
  }

  /** The earlier run's record for this definition of the disk, if any. */
  async lookup(disk: ResolvedDisk): Promise<StateRecord | undefined> {
    const place = this.index.get(disk.id);
    if (!place || !this.reader) return undefined;
    const line = Buffer.alloc(place.length);
    try {
      await this.reader.read(line, 0, place.length, place.offset);
    } catch (e) {
      throw toIoError(e, this.path, 'read state', place.offset);
    }
    const r = parseRecord(line);
    return r && r.disk === disk.id && r.fp === diskFingerprint(disk) ? r : undefined;
  }

  /** Appends a record; appends are serialized so concurrent disks never interleave lines. */
  record(rec: StateRecord): Promise<void> {
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
    await this.reader?.close();
    this.fh = this.reader = undefined;
    await unlink(this.lockPath).catch(() => {});
  }
}
