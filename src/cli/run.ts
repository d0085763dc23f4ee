/** The CLI proper: cleanup handlers, EPIPE handling, then the commander program. */
import { installCleanupHandlers } from '../stream/atomic.js';
import { imageInProgress } from '../stream/sink.js';
import { main } from './main.js';

installCleanupHandlers();
// A reader that goes away from text output (`guestkit map … | head`) is not an error worth a
// stack trace. From an image being written to stdout it is a failure: the image's sink rejects,
// and the command reports it and exits 1.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') {
      if (imageInProgress(stream)) return;
      process.exit(process.exitCode ?? 0);
    }
    throw e;
  });
}
main(process.argv).then((code) => {
  process.exitCode = code;
});
