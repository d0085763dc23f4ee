/**
 * Opening an image that arrives on a pipe. A format its driver can read in one forward pass
 * (capabilities.streamRead, and streamReadable for the subformat its probe sees) is read from the
 * pipe itself. Any other is spooled to a sparse temporary file first (stream/spool.ts) and opened
 * from there. Unless the format was named, the spooled file is detected again: a pipe shows the
 * probes only its head, while the spooled file also has a tail, and a format whose mark is at the
 * end (a fixed VHD is raw data followed by a footer) would otherwise pass for raw, its footer for
 * data.
 */
import type { ByteSource } from '../stream/source.js';
import { spoolToTempFile } from '../stream/spool.js';
import { detectBytes, detectSource, probeWith, readProbeInput } from './detect.js';
import { openSource, type OpenOptions } from './open.js';
import { byName } from './registry.js';
import type { FormatDriver, ImageReader, ProbeInput } from './types.js';
import { looksLikeOva } from '../ova/ova.js';
import { openOvaPipe } from '../ova/pipe.js';

/** Whether the image the pipe's head shows can be read from the pipe itself. */
function readableInOnePass(driver: FormatDriver, head: ProbeInput): boolean {
  if (!driver.capabilities.streamRead) return false;
  if (!driver.streamReadable) return true;
  const probed = probeWith(driver, head);
  return probed !== null && driver.streamReadable(probed);
}

export async function openPipe(pipe: ByteSource, opts: OpenOptions = {}): Promise<ImageReader> {
  const named = opts.format !== undefined ? byName(opts.format) : undefined;
  const head = await readProbeInput(pipe);
  // A tar of a VM's files: its disk is a byte range of the pipe (src/ova/pipe.ts).
  if ((!named || named.name === 'ova') && looksLikeOva(head.head)) return openOvaPipe(pipe, opts.disk);
  const seen = named ?? detectBytes(head).driver;
  if (readableInOnePass(seen, head)) return openSource(pipe, { ...opts, format: seen.name });
  const spooled = await spoolToTempFile(pipe);
  try {
    const driver = named ?? (await detectSource(spooled)).driver;
    return await openSource(spooled, { ...opts, format: driver.name });
  } catch (e) {
    await spooled.close();
    throw e;
  }
}
