/**
 * Serialization of the qcow2 header for the writers: cluster 0 laid out as QEMU's
 * qcow2_update_header lays it out (block/qcow2.c), parsed back by header.ts in the tests.
 */
import { UnsupportedFeatureError } from '../../errors.js';
import type { FeatureName } from './header.js';
import type { WriterConfig } from './options.js';
import {
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_TYPE_OFFSET,
  COMPRESSION_ZLIB,
  CRYPT_NONE,
  EXT_BACKING_FORMAT,
  EXT_FEATURE_TABLE,
  FEATURE_NAME_ENTRY,
  FEATURE_TYPE_AUTOCLEAR,
  FEATURE_TYPE_COMPAT,
  FEATURE_TYPE_INCOMPAT,
  HEADER_EXTENSION,
  INCOMPAT_COMPRESSION,
  INCOMPAT_EXTL2,
  MAX_BACKING_FILE_NAME,
  QCOW2_HEADER_V2,
  QCOW2_HEADER_V3,
  QCOW2_MAGIC,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH,
} from './layout.js';

/** The writer's configuration (the fields it shares with the header) plus where the tables went. */
export type HeaderSpec = Pick<WriterConfig, 'version' | 'clusterBits' | 'refcountOrder' | 'lazyRefcounts' | 'extendedL2' | 'compressionType' | 'backingFile' | 'backingFormat'> & {
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
};

/** Feature names QEMU 7.2 writes into its feature table, in its order. */
const QEMU_FEATURE_TABLE: FeatureName[] = [
  { type: FEATURE_TYPE_INCOMPAT, bit: 0, name: 'dirty bit' },
  { type: FEATURE_TYPE_INCOMPAT, bit: 1, name: 'corrupt bit' },
  { type: FEATURE_TYPE_INCOMPAT, bit: 2, name: 'external data file' },
  { type: FEATURE_TYPE_INCOMPAT, bit: 3, name: 'compression type' },
  { type: FEATURE_TYPE_INCOMPAT, bit: 4, name: 'extended L2 entries' },
  { type: FEATURE_TYPE_COMPAT, bit: 0, name: 'lazy refcounts' },
  { type: FEATURE_TYPE_AUTOCLEAR, bit: 0, name: 'bitmaps' },
  { type: FEATURE_TYPE_AUTOCLEAR, bit: 1, name: 'raw external data' },
];

const utf8enc = new TextEncoder();

/**
 * Builds cluster 0 as QEMU's qcow2_update_header lays it out: header, backing format extension,
 * feature name table (v3 with clusters over 4 KiB, as QEMU 7.2 does), end marker, backing file
 * name. Throws when it does not fit (512-byte clusters with a long backing name).
 */
export function serializeHeader(spec: HeaderSpec, file?: string): Uint8Array {
  const clusterSize = 2 ** spec.clusterBits;
  const buf = new Uint8Array(clusterSize);
  const headerLength = spec.version === 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH;
  let incompatible = 0n;
  if (spec.extendedL2) incompatible |= INCOMPAT_EXTL2;
  if (spec.compressionType !== COMPRESSION_ZLIB) incompatible |= INCOMPAT_COMPRESSION;
  const base = {
    magic: QCOW2_MAGIC,
    version: spec.version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: spec.clusterBits,
    size: spec.size,
    cryptMethod: CRYPT_NONE,
    l1Size: spec.l1Size,
    l1TableOffset: spec.l1TableOffset,
    refcountTableOffset: spec.refcountTableOffset,
    refcountTableClusters: spec.refcountTableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
  };
  let pos = headerLength;
  const room = (n: number) => {
    if (pos + n > clusterSize) {
      throw new UnsupportedFeatureError(`the header, its extensions and the backing file name do not fit in one ${clusterSize}-byte cluster`, {
        file,
        field: 'backing_file',
      });
    }
  };
  const addExtension = (type: number, data: Uint8Array) => {
    const padded = Math.ceil(data.length / 8) * 8;
    room(HEADER_EXTENSION.size + padded);
    HEADER_EXTENSION.serialize({ type, length: data.length }, buf, pos);
    buf.set(data, pos + HEADER_EXTENSION.size);
    pos += HEADER_EXTENSION.size + padded;
  };
  if (spec.backingFile !== undefined && spec.backingFormat !== undefined) addExtension(EXT_BACKING_FORMAT, utf8enc.encode(spec.backingFormat));
  if (spec.version === 3 && clusterSize > 4096) {
    const table = new Uint8Array(QEMU_FEATURE_TABLE.length * FEATURE_NAME_ENTRY.size);
    QEMU_FEATURE_TABLE.forEach((f, i) => FEATURE_NAME_ENTRY.serialize(f, table, i * FEATURE_NAME_ENTRY.size));
    addExtension(EXT_FEATURE_TABLE, table);
  }
  room(HEADER_EXTENSION.size);
  pos += HEADER_EXTENSION.size; // end marker: type 0, length 0 (already zero)
  if (spec.backingFile !== undefined) {
    const name = utf8enc.encode(spec.backingFile);
    if (name.length === 0 || name.length > MAX_BACKING_FILE_NAME) {
      throw new UnsupportedFeatureError(`backing file name must be 1 to ${MAX_BACKING_FILE_NAME} bytes long`, { file, field: 'backing_file' });
    }
    room(name.length);
    buf.set(name, pos);
    base.backingFileOffset = pos;
    base.backingFileSize = name.length;
  }
  if (spec.version === 2) {
    QCOW2_HEADER_V2.serialize(base, buf);
  } else {
    QCOW2_HEADER_V3.serialize(
      {
        ...base,
        incompatibleFeatures: incompatible,
        compatibleFeatures: spec.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
        autoclearFeatures: 0n,
        refcountOrder: spec.refcountOrder,
        headerLength,
      },
      buf,
    );
    buf[COMPRESSION_TYPE_OFFSET] = spec.compressionType;
  }
  return buf;
}
