/**
 * Runs the CLI as a user would: a spawned process on real files, using the compiled CLI that
 * `npm ci` / `npm test` build (pretest compiles), so startup cost is what users see.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = `${ROOT}dist/cli/bin.js`;
const TSX = `${ROOT}node_modules/tsx/dist/cli.mjs`;
const SRC = `${ROOT}src/cli/bin.ts`;
// Fall back to running the sources through tsx when the build is absent (vitest run directly).
/** Node arguments that start the CLI, for tests that spawn it themselves (signals, timing). */
export const CLI_ARGS: readonly string[] = existsSync(DIST) && process.env.GUESTKIT_CLI_FROM_SOURCE !== '1' ? [DIST] : [TSX, SRC];

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function guestkit(args: string[], opts: { input?: Buffer | string; cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [...CLI_ARGS, ...args], { cwd: opts.cwd, input: opts.input, encoding: 'utf8', maxBuffer: 1 << 30 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Same, with stdout as bytes (for image data written to a pipe). */
export function guestkitBinary(args: string[], opts: { input?: Buffer; cwd?: string } = {}): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI_ARGS, ...args], { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
