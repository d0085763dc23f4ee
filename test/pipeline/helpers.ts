/** Shared pieces of the pipeline tests: tiny sparse raw disks, plan files, the CLI runner. */
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, writeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pseudoRandom } from '../helpers/work.js';
import type { PipelineEvent } from '../../src/pipeline/events.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = `${ROOT}node_modules/tsx/dist/cli.mjs`;
const ENTRY = `${ROOT}test/pipeline/cli-entry.ts`;

/**
 * A raw disk of `size` bytes, mostly a hole, with a few KiB of seeded data at two places so
 * every disk has distinct content and a conversion that dropped a block would be caught.
 */
export function makeSparseDisk(path: string, size: number, seed: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    writeSync(fd, pseudoRandom(4096, seed), 0, 4096, 0);
    writeSync(fd, pseudoRandom(2048, seed + 7919), 0, 2048, Math.floor(size / 2 / 512) * 512);
  } finally {
    closeSync(fd);
  }
}

export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 1));
}

export interface PipelineCliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** `guestkit pipeline …` as a spawned process on real files. */
export function pipelineCli(args: string[], cwd?: string, env?: Record<string, string>): PipelineCliResult {
  const r = spawnSync(process.execPath, [TSX, ENTRY, 'pipeline', ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 28, ...(env ? { env: { ...process.env, ...env } } : {}) });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Same, asynchronously, for tests that interrupt the run. */
export function pipelineCliAsync(args: string[], cwd?: string) {
  return spawn(process.execPath, [TSX, ENTRY, 'pipeline', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function parseEvents(stdout: string): PipelineEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as PipelineEvent);
}

export function summaryOf(events: PipelineEvent[]) {
  const s = events.filter((e) => e.type === 'summary');
  if (s.length !== 1) throw new Error(`expected one summary event, got ${s.length}`);
  return s[0] as Extract<PipelineEvent, { type: 'summary' }>;
}
