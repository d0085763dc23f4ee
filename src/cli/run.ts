/** The CLI proper: cleanup handlers, EPIPE handling, then the commander program. */
import { installCleanupHandlers } from '../stream/atomic.js';
import { main } from './main.js';

installCleanupHandlers();
// A reader that goes away (`guestkit map … | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
main(process.argv).then((code) => {
  process.exitCode = code;
});
