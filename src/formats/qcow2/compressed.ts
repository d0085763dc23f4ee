/**
 * Compressed clusters (spec "Compressed Clusters Descriptor", block/qcow2-threads.c).
 *
 * Reading: the payload is the whole sector range the descriptor names; it inflates (zlib: raw
 * DEFLATE) or decodes (zstd) to exactly one cluster, and trailing bytes are ignored.
 *
 * Writing: raw DEFLATE, as QEMU writes, but with a 32 KiB window instead of QEMU's 4 KiB. Why:
 * Node's bundled zlib (Chromium's fork) compresses about 4% worse than the system zlib qemu-img
 * links when both use a 4 KiB window, so output made with src/stream/compress.ts deflateRawCluster
 * would be larger than `qemu-img convert -c`. Measured on 64 KiB clusters (bytes of payload):
 *
 *   data                    qemu-img (zlib 1.2.13, -12)   Node -12      Node -15 (used)
 *   libraries (8 MB)        2,444,541                     2,527,700     2,439,377
 *   mixed binaries+text     2,036,022                     2,115,604     1,961,490
 *   text (3.4 MB)           1,081,505                     1,084,568       871,612
 *
 * QEMU inflates each cluster in a single call into a cluster-sized buffer, so back-references
 * reach anywhere in the output already produced and the writer's window size does not matter to
 * it (FORMATS.md §2.6, verified with QEMU 7.2; our own tests convert every -c image back with
 * qemu-img). Any reader using a standard inflate with a 32 KiB window (the default) decodes it.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { inflateRawExact, inflateRawExactInto } from '../../stream/compress.js';
import { COMPRESSION_ZLIB, COMPRESSION_ZSTD } from './layout.js';
import { zstdDecodeCluster } from './zstd.js';

const deflateRawAsync = promisify(zlib.deflateRaw) as (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>;

/** Writer's DEFLATE parameters (see above). */
export const DEFLATE_OPTIONS: zlib.ZlibOptions = { windowBits: 15, memLevel: 9, level: zlib.constants.Z_DEFAULT_COMPRESSION };

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
