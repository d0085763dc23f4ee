/**
 * Test-only command line: a commander program with just the pipeline commands, run the way
 * src/cli/main.ts runs the real one (exitOverride, errors through reportError), so the CLI
 * tests do not depend on main.ts registering the command.
 */
import { Command, CommanderError } from 'commander';
import { reportError, EXIT_USAGE } from '../../src/cli/errors.js';
import { registerPipelineCommand } from '../../src/cli/pipeline.js';
import { installCleanupHandlers } from '../../src/stream/atomic.js';

installCleanupHandlers();
if (process.env.GUESTKIT_TEST_FAULT) (await import('./fault.js')).injectFault(process.env.GUESTKIT_TEST_FAULT);
const program = new Command().name('guestkit').exitOverride().configureOutput({ outputError: (str, write) => write(str) });
registerPipelineCommand(program);
try {
  await program.parseAsync(process.argv);
  process.exitCode ??= 0;
} catch (e) {
  process.exitCode = e instanceof CommanderError ? (e.exitCode === 0 ? 0 : EXIT_USAGE) : reportError(e);
}
