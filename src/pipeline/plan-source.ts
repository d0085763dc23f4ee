/**
 * Where a plan comes from: a file (JSON document or JSON lines, chosen by the extension) or an
 * object already in memory. Either way it is a sequence of header fields and disk entries that
 * can be read again from the start, which is what lets the runner validate the whole plan in
 * one streaming pass before it converts anything, and then run it in a second.
 */
import { dirname, resolve } from 'node:path';
import { readJsonPlan, type PlanItem, type PlanReadOptions } from './json-plan-reader.js';
import { readJsonLinesPlan } from './jsonl-plan-reader.js';
import { PlanError } from './errors.js';

export interface PlanSource {
  /** The plan file, for messages and the default state file; absent for in-memory plans. */
  readonly file?: string;
  /** Folder that relative paths in the plan are taken from. */
  readonly baseDir: string;
  /** True when header fields can only precede the disks (JSON lines), so a header read may stop early. */
  readonly headerFirst: boolean;
  /** A fresh pass over the plan. */
  items(): AsyncIterable<PlanItem>;
}

/** `.jsonl`/`.ndjson` files hold one disk per line; anything else is one JSON document. */
export function isJsonLinesName(path: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(path);
}

export function planFromFile(path: string, read: PlanReadOptions = {}): PlanSource {
  const file = resolve(path);
  const lines = isJsonLinesName(path);
  return {
    file,
    baseDir: dirname(file),
    headerFirst: lines,
    items: () => (lines ? readJsonLinesPlan(file, read) : readJsonPlan(file, read)),
  };
}

/** A plan object `{concurrency?, retry?, defaults?, disks: [...]}` or a bare array of disks. */
export function planFromObject(plan: unknown, baseDir: string = process.cwd()): PlanSource {
  if (plan === null || typeof plan !== 'object') {
    throw new PlanError(undefined, [{ path: '', message: 'a plan is an object with a "disks" array, or an array of disks' }]);
  }
  if (!Array.isArray(plan) && !Array.isArray((plan as { disks?: unknown }).disks)) {
    throw new PlanError(undefined, [{ path: 'disks', message: (plan as { disks?: unknown }).disks === undefined ? 'required' : 'must be an array of disks' }]);
  }
  return {
    baseDir: resolve(baseDir),
    headerFirst: false,
    async *items(): AsyncGenerator<PlanItem> {
      const disks: unknown[] = Array.isArray(plan) ? plan : (plan as { disks: unknown[] }).disks;
      if (!Array.isArray(plan)) {
        for (const [key, value] of Object.entries(plan)) if (key !== 'disks') yield { kind: 'header', key, value };
      }
      for (let i = 0; i < disks.length; i++) yield { kind: 'disk', index: i, value: disks[i] };
    },
  };
}
