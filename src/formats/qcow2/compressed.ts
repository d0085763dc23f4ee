/**
 * Compressed clusters (spec "Compressed Clusters Descriptor", block/qcow2-threads.c).
 *
 * Reading: the payload is the whole sector range the descriptor names; it inflates (zlib: raw
 * DEFLATE) or decodes (zstd) to exactly one cluster, and trailing bytes are ignored.
 *
 * Writing: raw DEFLATE, as QEMU writes, with an 8 KiB window (windowBits 13) instead of QEMU's
 * 4 KiB. Why: Node's bundled zlib (Chromium's fork) compresses a little worse than the system zlib
 * qemu-img links when both use a 4 KiB window, and a larger window costs time: on text, deflate
 * runs at 50 MiB/s with a 4 KiB window, 40 with 8 KiB, 31 with 16 KiB and 24 with 32 KiB (one
 * core). 8 KiB keeps our output smaller than `qemu-img convert -c`'s on every sample measured
 * while a text cluster costs ~1.25x the time a 4 KiB window takes instead of ~2x. Sizes (64 KiB
 * clusters, `convert -c -O qcow2`):
 *
 *   data                       qemu-img (zlib 1.2.13, -12)   guestkit -13 (used)   guestkit -15 (before)
 *   libraries (32 MiB)         11,554,816                    11,403,776            11,010,560
 *   word-salad text (64 MiB)   14,346,240                    13,500,928            12,583,424
 *
 * Node at -12 would give 11,437,994 bytes of payload on those libraries, and on an 8 MB set of
 * libraries 2,527,700 against qemu-img's 2,444,541: about 3% larger than qemu-img.
 *
 * QEMU inflates each cluster in a single call into a cluster-sized buffer, so back-references
 * reach anywhere in the output already produced and the writer's window size does not matter to
 * it (docs/FORMATS.md §2.6, verified with QEMU 7.2; our own tests convert every -c image back with
 * qemu-img). Any reader using a standard inflate with a 32 KiB window (the default) decodes it.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { inflateRawExact, inflateRawExactInto } from '../../stream/compress.js';
import { COMPRESSION_ZLIB, COMPRESSION_ZSTD } from './layout.js';
import { zstdDecodeCluster } from './zstd.js';

const deflateRawAsync = promisify(zlib.deflateRaw) as (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>;

/** Writer's DEFLATE parameters (see above). */
export const DEFLATE_OPTIONS: zlib.ZlibOptions = { windowBits: 13, memLevel: 9, level: zlib.constants.Z_DEFAULT_COMPRESSION };

export function deflateCluster(data: Uint8Array): Promise<Buffer> {
  return deflateRawAsync(data, DEFLATE_OPTIONS);
}

interface Where {
  file?: string;
  offset?: number;
  field?: string;
}

/** decompressCluster() into out[at, at + clusterSize): zlib clusters inflate in place, without a buffer of their own. */
export async function decompressClusterInto(payload: Uint8Array, type: number, out: Uint8Array, at: number, clusterSize: number, where: Where): Promise<void> {
  if (type === COMPRESSION_ZLIB) inflateRawExactInto(payload, out, at, clusterSize, where);
  else out.set(await decompressCluster(payload, type, clusterSize, where), at);
}

/** Decompresses one cluster's payload into exactly `clusterSize` bytes. */
export async function decompressCluster(payload: Uint8Array, type: number, clusterSize: number, where: Where): Promise<Uint8Array> {
  if (type === COMPRESSION_ZSTD) return zstdDecodeCluster(payload, clusterSize, where);
  if (type !== COMPRESSION_ZLIB) throw new Error(`compression type ${type} reached decompressCluster`);
  return inflateRawExact(payload, clusterSize, where);
}
