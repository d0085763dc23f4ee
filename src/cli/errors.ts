/**
 * The only place where errors become messages and exit codes.
 * 0 success, 1 failure (bad image, I/O), 2 usage error; commands with their own codes
 * (compare, check) document them.
 */
import { GuestkitError, UsageError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

let debug = false;
export function setDebug(on: boolean): void {
  debug = on;
}

export function reportError(e: unknown, prefix = 'guestkit'): number {
  if (e instanceof GuestkitError) {
    process.stderr.write(`${prefix}: ${e.message}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    // A usage error may carry qemu-img's own exit code for the same mistake (--output xml: 1).
    return e instanceof UsageError ? ((e as { exitCode?: number }).exitCode ?? EXIT_USAGE) : EXIT_FAILURE;
  }
  const err = e as { code?: string; message?: string; stack?: string };
  if (err?.code?.startsWith?.('commander.')) return EXIT_USAGE;
  process.stderr.write(`${prefix}: internal error: ${err?.message ?? String(e)}\n`);
  process.stderr.write(debug && err?.stack ? `${err.stack}\n` : `${prefix}: run again with --debug for details, and please report it\n`);
  return EXIT_FAILURE;
}
