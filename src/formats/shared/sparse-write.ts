/**
 * Writes a block into a fresh seekable file without its zero runs, which stay holes and read back
 * as zeros: the copy engine hands over whole allocation units (a 2 MiB VHD block is data if any
 * byte of it is), and writing its zero pages would cost page-cache writes and disk space that
 * qemu-img does not spend. A pipe cannot hold holes, and a fully allocated output (-S 0) must not
 * have any: there everything is written.
 */
import type { ByteSink } from '../../stream/sink.js';
import { scanZeroRuns } from '../../stream/zero.js';
import type { WriteBehind } from './write-behind.js';

/** Zero runs shorter than a page are not worth a separate write. */
export const HOLE_GRANULARITY = 4096;

/** With `behind`, the writes are started and tracked there rather than awaited. */
export async function writeSkippingZeros(sink: ByteSink, offset: number, data: Uint8Array, behind?: WriteBehind): Promise<void> {
  if (!sink.seekable || sink.fullyAllocated) {
    await sink.write(offset, data);
    return;
  }
  const runs: number[] = [];
  scanZeroRuns(data, HOLE_GRANULARITY, (start, end, zero) => {
    if (!zero) runs.push(start, end);
  });
  for (let i = 0; i < runs.length; i += 2) {
    const at = offset + runs[i];
    const run = data.subarray(runs[i], runs[i + 1]);
    await (behind ? behind.write(sink, at, run) : sink.write(at, run));
  }
}
