/**
 * Reads a JSON plan document incrementally with @streamparser/json: disks are handed out one by
 * one as the file is read, so a plan with a hundred thousand disks costs the memory of one read
 * chunk plus the disks parsed from it, never the whole document.
 *
 * Accepted roots: an object `{..., "disks": [...]}` (header fields may come before or after the
 * disks) or a bare array of disks. Values are pulled, not pushed: the next chunk is read only
 * when every disk parsed from the previous one has been taken, which is the backpressure that
 * keeps memory flat.
 */
import { createReadStream } from 'node:fs';
import { JSONParser, TokenType, type ParsedElementInfo } from '@streamparser/json';
import { toIoError } from '../errors.js';
import { EntryGuard } from './entry-guard.js';
import { PlanError, type PlanIssue } from './errors.js';

export type PlanItem =
  | { kind: 'header'; key: string; value: unknown }
  | { kind: 'disk'; index: number; value: unknown; line?: number }
  /** A JSON-lines entry that is not JSON: reported, and reading goes on with the next line. */
  | { kind: 'invalid'; issue: PlanIssue };

export interface PlanReadOptions {
  /** Bytes per read; small values are for tests. */
  chunkSize?: number;
  /** Called after each chunk is read with the total read so far (lets tests prove streaming). */
  onRead?: (bytesRead: number) => void;
}

export const DEFAULT_CHUNK = 64 * 1024;

/** Line and column of byte `offset`, when it falls in the chunk being parsed. */
class LineTracker {
  private linesBefore = 0;
  private chunkStart = 0;
  private chunk: Uint8Array = new Uint8Array(0);

  next(chunk: Uint8Array): void {
    for (let i = 0; i < this.chunk.length; i++) if (this.chunk[i] === 10) this.linesBefore++;
    this.chunkStart += this.chunk.length;
    this.chunk = chunk;
  }

  locate(offset: number): { line: number; column: number } | undefined {
    const rel = offset - this.chunkStart;
    if (rel < 0 || rel > this.chunk.length) return undefined;
    let line = this.linesBefore + 1;
    let lineStart = 0;
    for (let i = 0; i < rel; i++) {
      if (this.chunk[i] === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    return { line, column: rel - lineStart + 1 };
  }
}

export async function* readJsonPlan(path: string, opts: PlanReadOptions = {}): AsyncGenerator<PlanItem> {
  const queue: PlanItem[] = [];
  let root: 'object' | 'array' | 'other' | undefined;
  let sawDisks = false;
  let lastTokenOffset = 0;
  const lines = new LineTracker();
  const headerKeys = new Set<string>();
  const guard = new EntryGuard(path);

  // `$.disks.*` hands out each disk; `$.*` each top-level field (or each disk of a bare array).
  // keepStack:false drops top-level values once emitted; disk elements live in `disks`, whose
  // own emission keeps them, so they are dropped by hand below.
  const parser = new JSONParser({ paths: ['$.disks.*', '$.*'], keepStack: false });
  parser.onToken = (t) => {
    if (root === undefined) root = t.token === TokenType.LEFT_BRACE ? 'object' : t.token === TokenType.LEFT_BRACKET ? 'array' : 'other';
    lastTokenOffset = t.offset;
    guard.token(t.token, t.value, t.offset);
  };
  parser.onValue = ({ value, key, parent, stack }: ParsedElementInfo) => {
    if (stack.length === 2) {
      // An element of `disks`. `parent` is the parser's live array: emptying it is what keeps
      // a long disks array from accumulating (documented: parent is a live reference).
      if (Array.isArray(parent)) {
        parent.length = 0;
        queue.push({ kind: 'disk', index: key as number, value });
      }
      // Members of a `disks` object are reported when `disks` itself completes.
      return;
    }
    if (stack.length !== 1) return;
    if (Array.isArray(parent)) {
      queue.push({ kind: 'disk', index: key as number, value });
      return;
    }
    const name = String(key);
    if (headerKeys.has(name)) throw new PlanError(path, [{ path: name, message: 'appears twice' }]);
    headerKeys.add(name);
    if (name === 'disks') {
      sawDisks = true;
      if (!Array.isArray(value)) throw new PlanError(path, [{ path: 'disks', message: 'must be an array of disks' }]);
      return;
    }
    queue.push({ kind: 'header', key: name, value });
  };

  const syntaxError = (e: unknown): PlanError => {
    if (e instanceof PlanError) return e;
    const message = e instanceof Error ? e.message : String(e);
    const abs = /absolute position "(\d+)"/.exec(message);
    const where = lines.locate(abs ? Number(abs[1]) : lastTokenOffset);
    const issue: PlanIssue = {
      path: '',
      message: `not valid JSON${where ? ` at line ${where.line}, column ${where.column}` : ''}: ${message}`,
    };
    if (/ENDED/.test(message)) {
      issue.message += /Unexpected "\{"/.test(message)
        ? ' (another object after the plan: a plan with one disk per line must be named .jsonl)'
        : ' (text after the end of the plan)';
    }
    return new PlanError(path, [issue]);
  };

  yield* planChunks(path, opts, function* (chunk) {
    lines.next(chunk);
    try {
      parser.write(chunk);
    } catch (e) {
      throw syntaxError(e);
    }
    while (queue.length) yield queue.shift()!;
  });
  if (!parser.isEnded) {
    try {
      parser.end();
    } catch (e) {
      throw syntaxError(e);
    }
  }
  while (queue.length) yield queue.shift()!;
  if (root === undefined) throw new PlanError(path, [{ path: '', message: 'the plan is empty' }]);
  if (root === 'other') throw new PlanError(path, [{ path: '', message: 'a plan is a JSON object with a "disks" array, or an array of disks' }]);
  if (root === 'object' && !sawDisks) throw new PlanError(path, [{ path: 'disks', message: 'required' }]);
}

/**
 * A plan file read in chunks (never whole), with progress reported; `onChunk` turns each chunk
 * into the items it completes. Failures other than a PlanError become an IoError naming the file.
 */
export async function* planChunks(path: string, opts: PlanReadOptions, onChunk: (chunk: Buffer) => Iterable<PlanItem>): AsyncGenerator<PlanItem> {
  let bytesRead = 0;
  const stream = createReadStream(path, { highWaterMark: opts.chunkSize ?? DEFAULT_CHUNK });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytesRead += chunk.length;
      opts.onRead?.(bytesRead);
      yield* onChunk(chunk);
    }
  } catch (e) {
    if (e instanceof PlanError) throw e;
    throw toIoError(e, path, 'read plan');
  } finally {
    stream.destroy();
  }
}
