/**
 * qcow2 creation options: the names and meanings of `qemu-img create -f qcow2 -o …`, checked
 * with QEMU's rules (block/qcow2.c qcow2_co_create) and QEMU's wording where it has one.
 */
import * as z from 'zod';
import { UnsupportedFeatureError, UsageError } from '../../errors.js';
import { isPowerOfTwo, roundUp } from '../shared/bounds.js';
import { definedOnly, zBool, zSize } from '../shared/options.js';
import type { CreateSpec, FormatInfo } from '../types.js';
import { COMPRESSION_ZLIB, COMPRESSION_ZSTD, MAX_CLUSTER_BITS, MAX_L1_BYTES, MIN_CLUSTER_BITS, MIN_EXTL2_CLUSTER_BITS, geometry, l1EntriesFor } from './layout.js';

const zInt = z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), z.number().int());

export const qcow2OptionsSchema = z
  .object({
    /** 0.10 (version 2) or 1.1 (version 3, the default); v2/v3 accepted as aliases, as in QEMU. */
    compat: z.enum(['0.10', '1.1', 'v2', 'v3']).optional().describe('Compatibility level (v2 [0.10] or v3 [1.1]; default 1.1)'),
    cluster_size: zSize.optional().describe('qcow2 cluster size, a power of two from 512 to 2M (default 64k)'),
    refcount_bits: zInt.optional().describe('Width of a reference count entry in bits (default 16)'),
    lazy_refcounts: zBool.optional().describe('Postpone refcount updates (default off)'),
    extended_l2: zBool.optional().describe('Extended L2 tables (default off)'),
    compression_type: z.enum(['zlib', 'zstd']).optional().describe('Compression method used for image cluster compression (default zlib)'),
    backing_file: z.string().min(1).optional().describe('File name of a base image'),
    backing_fmt: z.string().min(1).optional().describe('Image format of the base image'),
    /** Only "off": metadata or full preallocation is not implemented. */
    preallocation: z.enum(['off']).optional().describe('Preallocation mode (only off is implemented)'),
  })
  .strict();

export type Qcow2Options = z.infer<typeof qcow2OptionsSchema>;

export interface WriterConfig {
  version: 2 | 3;
  clusterBits: number;
  refcountOrder: number;
  lazyRefcounts: boolean;
  extendedL2: boolean;
  compressionType: number;
  backingFile?: string;
  backingFormat?: string;
  /** The spec's size rounded up to whole sectors, as QEMU requires of qcow2 sizes. */
  virtualSize: number;
  l1Size: number;
  compress: boolean;
  parallelism: number;
}

export const DEFAULT_CLUSTER_SIZE = 65536;
export const DEFAULT_PARALLELISM = 4;

export function resolveConfig(spec: CreateSpec): WriterConfig {
  const r = qcow2OptionsSchema.safeParse(spec.options);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.join('.') || (issue as { keys?: string[] }).keys?.join(', ') || '';
    throw new UsageError(`invalid qcow2 option${key ? ` '${key}'` : ''}: ${issue.message}`, { field: key || undefined });
  }
  const o = r.data;
  const file = spec.file;
  const version = o.compat === '0.10' || o.compat === 'v2' ? 2 : 3;
  const clusterSize = o.cluster_size ?? DEFAULT_CLUSTER_SIZE;
  if (!isPowerOfTwo(clusterSize) || clusterSize < 2 ** MIN_CLUSTER_BITS || clusterSize > 2 ** MAX_CLUSTER_BITS) {
    throw new UsageError(`Cluster size must be a power of two between 512 and 2048k (got ${clusterSize})`, { file, field: 'cluster_size' });
  }
  const clusterBits = Math.log2(clusterSize);
  const refcountBits = o.refcount_bits ?? 16;
  if (!isPowerOfTwo(refcountBits) || refcountBits > 64) {
    throw new UsageError(`Refcount width must be a power of two and may not exceed 64 bits (got ${refcountBits})`, { file, field: 'refcount_bits' });
  }
  if (version === 2 && refcountBits !== 16) {
    throw new UsageError('Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)', { file, field: 'refcount_bits' });
  }
  const lazyRefcounts = o.lazy_refcounts ?? false;
  if (version === 2 && lazyRefcounts) {
    throw new UsageError('Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)', { file, field: 'lazy_refcounts' });
  }
  const extendedL2 = o.extended_l2 ?? false;
  if (extendedL2 && version === 2) {
    throw new UsageError('Extended L2 entries are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)', { file, field: 'extended_l2' });
  }
  if (extendedL2 && clusterBits < MIN_EXTL2_CLUSTER_BITS) {
    throw new UsageError(`Extended L2 entries are only supported with cluster sizes of at least ${2 ** MIN_EXTL2_CLUSTER_BITS} bytes`, { file, field: 'extended_l2' });
  }
  const compressionType = o.compression_type === 'zstd' ? COMPRESSION_ZSTD : COMPRESSION_ZLIB;
  if (compressionType !== COMPRESSION_ZLIB && version === 2) {
    throw new UsageError('Non-zlib compression type is only supported with compatibility level 1.1 and above (use compat=1.1 or greater)', { file, field: 'compression_type' });
  }
  const compress = spec.compress ?? false;
  if (compress && compressionType === COMPRESSION_ZSTD) {
    throw new UnsupportedFeatureError('writing zstd-compressed clusters is not supported (no zstd encoder is available); use compression_type=zlib', {
      file,
      field: 'compression_type',
    });
  }
  if (o.backing_file !== undefined && o.backing_fmt === undefined) {
    throw new UsageError('backing_fmt is required with backing_file (qemu-img 7.2 refuses to guess the backing format too)', { file, field: 'backing_fmt' });
  }
  if (o.backing_fmt !== undefined && o.backing_file === undefined) {
    throw new UsageError('backing_fmt given without backing_file', { file, field: 'backing_fmt' });
  }
  if (!Number.isSafeInteger(spec.virtualSize) || spec.virtualSize < 0) {
    throw new UsageError(`invalid virtual size ${spec.virtualSize}`, { file, field: 'size' });
  }
  const virtualSize = roundUp(spec.virtualSize, 512);
  const l1Size = l1EntriesFor(virtualSize, geometry(clusterBits, extendedL2));
  if (l1Size * 8 > MAX_L1_BYTES) {
    throw new UsageError(`The image size is too large for file format 'qcow2' with ${clusterSize}-byte clusters (try using a larger cluster size)`, { file, field: 'size' });
  }
  const parallelism = Math.max(1, Math.floor(spec.parallelism ?? DEFAULT_PARALLELISM));
  return {
    version,
    clusterBits,
    refcountOrder: Math.log2(refcountBits),
    lazyRefcounts,
    extendedL2,
    compressionType,
    backingFile: o.backing_file,
    backingFormat: o.backing_fmt,
    virtualSize,
    l1Size,
    compress,
    parallelism,
  };
}

/** Options for a new image laid out like the one `info` describes (convert -n). */
export function recreateQcow2Options(info: FormatInfo): Record<string, unknown> {
  const d = info.formatSpecific ?? {};
  // What a new image would not carry over: refuse rather than drop it.
  if (d['data-file'] !== undefined) throw new UnsupportedFeatureError('an image with an external data file cannot be rewritten in place (-n)', { field: 'data_file' });
  if (Array.isArray(d.bitmaps) && d.bitmaps.length) throw new UnsupportedFeatureError('an image with persistent bitmaps cannot be rewritten in place (-n): they would be lost', { field: 'bitmaps' });
  return definedOnly({
    compat: d.compat,
    cluster_size: info.clusterSize,
    refcount_bits: d['refcount-bits'],
    lazy_refcounts: d['lazy-refcounts'],
    extended_l2: d['extended-l2'],
    compression_type: d['compression-type'],
  });
}
