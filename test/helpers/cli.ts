/** Runs the CLI as a user would: a spawned process on real files. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = `${ROOT}node_modules/tsx/dist/cli.mjs`;
const BIN = `${ROOT}src/cli/bin.ts`;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function guestkit(args: string[], opts: { input?: Buffer | string; cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [TSX, BIN, ...args], {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Same, with stdout as bytes (for image data written to a pipe). */
export function guestkitBinary(args: string[], opts: { input?: Buffer; cwd?: string } = {}): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [TSX, BIN, ...args], { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
