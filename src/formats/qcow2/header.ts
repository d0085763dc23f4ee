/**
 * The qcow2 header and its extensions: parsing with QEMU's validation (block/qcow2.c
 * qcow2_do_open, qcow2_read_extensions), one named step per concern. Every field is typed;
 * every size is bounded before use; every refusal names the field and its offset, taken from the
 * layout (layout.ts). The writer's header is made in header-write.ts.
 */
import { CorruptImageError, UnsupportedFeatureError } from '../../errors.js';
import type { Parsed } from '../shared/struct.js';
import type { ByteSource } from '../../stream/source.js';
import { inRange, limit, type Where } from '../shared/bounds.js';
import { textUntilNul } from '../shared/text.js';
import {
  AUTOCLEAR_BITMAPS,
  AUTOCLEAR_DATA_FILE_RAW,
  BITMAPS_EXTENSION,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_NAMES,
  COMPRESSION_TYPE_OFFSET,
  COMPRESSION_ZLIB,
  CRYPTO_EXTENSION,
  CRYPT_AES,
  CRYPT_LUKS,
  CRYPT_NONE,
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO_HEADER,
  EXT_DATA_FILE,
  EXT_END,
  EXT_FEATURE_TABLE,
  FEATURE_NAME_ENTRY,
  FEATURE_TYPE_INCOMPAT,
  HEADER_EXTENSION,
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTL2,
  INCOMPAT_KNOWN,
  MAX_BACKING_FILE_NAME,
  MAX_BACKING_FORMAT,
  MAX_BITMAPS,
  MAX_BITMAP_DIRECTORY_BYTES,
  MAX_CLUSTER_BITS,
  MAX_L1_BYTES,
  MAX_REFCOUNT_ORDER,
  MAX_REFTABLE_BYTES,
  MAX_SNAPSHOTS,
  MIN_CLUSTER_BITS,
  MIN_EXTL2_CLUSTER_BITS,
  QCOW2_HEADER_V2,
  QCOW2_HEADER_V3,
  QCOW2_MAGIC,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH,
  V3_MIN_HEADER_LENGTH,
  geometry,
  l1EntriesFor,
  type Geometry,
  type Qcow2HeaderV3Fields,
} from './layout.js';

export interface FeatureName {
  type: number;
  bit: number;
  name: string;
}

export interface UnknownExtension {
  type: number;
  length: number;
  offset: number;
}

export interface Qcow2Extensions {
  backingFormat?: string;
  featureNames: FeatureName[];
  bitmaps?: { nbBitmaps: number; directorySize: number; directoryOffset: number };
  cryptoHeader?: { offset: number; length: number };
  dataFile?: string;
  unknown: UnknownExtension[];
}

/** Every header field (v2 fields, v3 fields with their v2 defaults) plus what they imply. */
export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** The size field as stored. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  extensions: Qcow2Extensions;
  backingFile?: string;
  // Derived
  geometry: Geometry;
  /** QEMU's disk length: the size field rounded down to whole 512-byte sectors (bs->total_sectors). */
  virtualSize: number;
  refcountBits: number;
  dirty: boolean;
  corrupt: boolean;
  lazyRefcounts: boolean;
  hasDataFile: boolean;
  dataFileRaw: boolean;
  /** Non-fatal observations (ignored bitmaps extension, corrupt bit, truncated size…). */
  warnings: string[];
}

export interface HeaderParseOptions {
  file: string;
  /** qemu-img check opens images that normal opening refuses (no refcount table). */
  forCheck?: boolean;
}

/** Bytes of the fixed header we need before knowing the cluster size. */
export const FIXED_HEADER_BYTES = V3_HEADER_LENGTH;

const SECTOR = 512;

/** A header field as errors name it: the spec's name (snake_case) and its offset, from the layout. */
export function headerField(file: string, key: keyof Qcow2HeaderV3Fields): Where {
  return { file, field: key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), offset: QCOW2_HEADER_V3.offsetOf(key) };
}

const compressionTypeField = (file: string): Where => ({ file, field: 'compression_type', offset: COMPRESSION_TYPE_OFFSET });

type V2Fields = Parsed<typeof QCOW2_HEADER_V2>;

/** The fields a version 3 header adds (after the v2 fields), with the values version 2 implies. */
export interface V3Fields {
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

/** What a version 2 header means by the fields it does not have: 16-bit refcounts, zlib. */
const V2_IMPLIED: V3Fields = {
  incompatibleFeatures: 0n,
  compatibleFeatures: 0n,
  autoclearFeatures: 0n,
  refcountOrder: 4,
  headerLength: V2_HEADER_LENGTH,
  compressionType: COMPRESSION_ZLIB,
};

/** The magic and a version we read (2 or 3). */
export function checkIdentity(v2: V2Fields, file: string): 2 | 3 {
  if (v2.magic !== QCOW2_MAGIC) throw new CorruptImageError('not a qcow2 image (bad magic)', headerField(file, 'magic'));
  if (v2.version < 2 || v2.version > 3) {
    throw new UnsupportedFeatureError(`unsupported qcow2 version ${v2.version} (2 and 3 are supported)`, headerField(file, 'version'));
  }
  return v2.version as 2 | 3;
}

/** The cluster size, within what QEMU accepts (512 bytes to 2 MiB). */
export function checkClusterBits(clusterBits: number, file: string): number {
  if (clusterBits < MIN_CLUSTER_BITS) {
    throw new CorruptImageError(`cluster_bits ${clusterBits} is below the minimum ${MIN_CLUSTER_BITS}`, headerField(file, 'clusterBits'));
  }
  if (clusterBits > MAX_CLUSTER_BITS) {
    throw new UnsupportedFeatureError(`unsupported cluster size 2^${clusterBits} (QEMU supports 512 bytes to 2 MiB)`, headerField(file, 'clusterBits'));
  }
  return 2 ** clusterBits;
}

/** The version 3 fields, header_length bounded by the first cluster, and the optional compression_type. */
export function readV3Fields(buf: Uint8Array, clusterSize: number, file: string): V3Fields {
  const v3 = QCOW2_HEADER_V3.parse(buf, { file });
  const headerLength = v3.headerLength;
  if (headerLength < V3_MIN_HEADER_LENGTH) {
    throw new CorruptImageError(`qcow2 header too short: header_length ${headerLength} < ${V3_MIN_HEADER_LENGTH}`, headerField(file, 'headerLength'));
  }
  if (headerLength > clusterSize) {
    throw new CorruptImageError(`qcow2 header exceeds cluster size: header_length ${headerLength} > ${clusterSize}`, headerField(file, 'headerLength'));
  }
  // An optional field is absent when header_length does not reach it; absent means 0 (zlib).
  let compressionType = COMPRESSION_ZLIB;
  if (headerLength > COMPRESSION_TYPE_OFFSET) {
    if (buf.length <= COMPRESSION_TYPE_OFFSET) throw new CorruptImageError('file ends inside the header (compression_type)', compressionTypeField(file));
    compressionType = buf[COMPRESSION_TYPE_OFFSET];
  }
  return {
    incompatibleFeatures: v3.incompatibleFeatures,
    compatibleFeatures: v3.compatibleFeatures,
    autoclearFeatures: v3.autoclearFeatures,
    refcountOrder: v3.refcountOrder,
    headerLength,
    compressionType,
  };
}

/** The backing file name must lie in the first cluster, and not be longer than QEMU reads. */
export function checkBackingName(v2: V2Fields, clusterSize: number, file: string): void {
  if (v2.backingFileOffset > clusterSize) {
    throw new CorruptImageError(`invalid backing file offset ${v2.backingFileOffset}: beyond the first cluster`, headerField(file, 'backingFileOffset'));
  }
  if (v2.backingFileOffset === 0) return;
  const room = Math.min(MAX_BACKING_FILE_NAME, clusterSize - v2.backingFileOffset);
  if (v2.backingFileSize > room) {
    throw new CorruptImageError(`backing file name too long: ${v2.backingFileSize} bytes (at most ${room} fit)`, headerField(file, 'backingFileSize'));
  }
}

/** Encrypted images are refused, naming the method. */
export function checkNotEncrypted(cryptMethod: number, file: string): void {
  if (cryptMethod === CRYPT_NONE) return;
  const kind = cryptMethod === CRYPT_AES ? 'AES' : cryptMethod === CRYPT_LUKS ? 'LUKS' : `method ${cryptMethod}`;
  throw new UnsupportedFeatureError(`encrypted images are not supported (crypt_method ${cryptMethod}: ${kind})`, headerField(file, 'cryptMethod'));
}

/** refcount_order in range; the compression type known and agreeing with its incompatible bit. */
export function checkRefcountAndCompression(v3: V3Fields, file: string): void {
  inRange(v3.refcountOrder, 0, MAX_REFCOUNT_ORDER, headerField(file, 'refcountOrder'));
  const { compressionType, incompatibleFeatures } = v3;
  if (compressionType >= COMPRESSION_NAMES.length) {
    throw new UnsupportedFeatureError(`unknown compression type ${compressionType}`, compressionTypeField(file));
  }
  // qcow2.c validate_compression_type: a non-zlib type needs the incompatible bit, zlib must not set it.
  if (compressionType !== COMPRESSION_ZLIB && !(incompatibleFeatures & INCOMPAT_COMPRESSION)) {
    throw new CorruptImageError(`compression type ${COMPRESSION_NAMES[compressionType]} without the compression-type incompatible bit`, headerField(file, 'incompatibleFeatures'));
  }
  if (compressionType === COMPRESSION_ZLIB && incompatibleFeatures & INCOMPAT_COMPRESSION) {
    throw new CorruptImageError('compression-type incompatible bit set with compression type zlib', headerField(file, 'incompatibleFeatures'));
  }
}

/** The cluster geometry, with extended L2 entries only where clusters are large enough for them. */
export function headerGeometry(clusterBits: number, incompatibleFeatures: bigint, file: string): Geometry {
  const extendedL2 = (incompatibleFeatures & INCOMPAT_EXTL2) !== 0n;
  if (extendedL2 && clusterBits < MIN_EXTL2_CLUSTER_BITS) {
    throw new CorruptImageError(`extended L2 entries need clusters of at least 16 KiB (subclusters of 512 bytes); cluster size is ${2 ** clusterBits}`, headerField(file, 'clusterBits'));
  }
  return geometry(clusterBits, extendedL2);
}

/**
 * The tables the header points at (qcow2_validate_table): size limits first, then alignment; the
 * L1 table large enough for the virtual size, which is returned (whole sectors, as QEMU counts it).
 */
export function checkTables(v2: V2Fields, g: Geometry, opts: HeaderParseOptions): number {
  const file = opts.file;
  const clusterSize = g.clusterSize;
  if (v2.refcountTableClusters === 0 && !opts.forCheck) {
    throw new CorruptImageError('image does not contain a reference count table', headerField(file, 'refcountTableClusters'));
  }
  limit(v2.refcountTableClusters, MAX_REFTABLE_BYTES / clusterSize, headerField(file, 'refcountTableClusters'), 'reference count table too large');
  if (v2.refcountTableOffset % clusterSize !== 0) {
    throw new CorruptImageError(`reference count table offset ${v2.refcountTableOffset} is not cluster aligned`, headerField(file, 'refcountTableOffset'));
  }
  limit(v2.nbSnapshots, MAX_SNAPSHOTS, headerField(file, 'nbSnapshots'), 'too many snapshots');
  if (v2.snapshotsOffset % clusterSize !== 0) {
    throw new CorruptImageError(`snapshot table offset ${v2.snapshotsOffset} is not cluster aligned`, headerField(file, 'snapshotsOffset'));
  }
  limit(v2.l1Size, MAX_L1_BYTES / 8, headerField(file, 'l1Size'), 'active L1 table too large');
  if (v2.l1TableOffset % clusterSize !== 0) {
    throw new CorruptImageError(`L1 table offset ${v2.l1TableOffset} is not cluster aligned`, headerField(file, 'l1TableOffset'));
  }
  const virtualSize = Math.floor(v2.size / SECTOR) * SECTOR;
  const needL1 = l1EntriesFor(virtualSize, g);
  if (v2.l1Size < needL1) {
    throw new CorruptImageError(`L1 table is too small: l1_size ${v2.l1Size} maps less than the virtual size ${virtualSize} (needs ${needL1})`, headerField(file, 'l1Size'));
  }
  return virtualSize;
}

/** What opening says without refusing: a size QEMU rounds, the corrupt and dirty bits. */
export function headerWarnings(size: number, virtualSize: number, incompatibleFeatures: bigint): string[] {
  const warnings: string[] = [];
  if (virtualSize !== size) warnings.push(`virtual size ${size} is not a multiple of 512; QEMU and guestkit use ${virtualSize}`);
  if (incompatibleFeatures & INCOMPAT_CORRUPT) warnings.push('image is marked corrupt: it can be read, but must be repaired before any write');
  if (incompatibleFeatures & INCOMPAT_DIRTY) warnings.push('image is marked dirty: its reference counts may be stale (reading is unaffected)');
  return warnings;
}

/**
 * Parses the fixed fields (the v2 or v3 header, plus compression_type) and validates them like
 * QEMU's qcow2_do_open, in its order, so the first refusal is the one QEMU gives.
 */
export function parseFixedHeader(buf: Uint8Array, opts: HeaderParseOptions): Omit<Qcow2Header, 'extensions' | 'backingFile' | 'hasDataFile' | 'dataFileRaw'> {
  const file = opts.file;
  const v2 = QCOW2_HEADER_V2.parse(buf, { file });
  const version = checkIdentity(v2, file);
  const clusterSize = checkClusterBits(v2.clusterBits, file);
  const v3 = version === 3 ? readV3Fields(buf, clusterSize, file) : V2_IMPLIED;
  checkBackingName(v2, clusterSize, file);
  // Encryption before the remaining checks: the user should learn the real reason.
  checkNotEncrypted(v2.cryptMethod, file);
  checkRefcountAndCompression(v3, file);
  const g = headerGeometry(v2.clusterBits, v3.incompatibleFeatures, file);
  const virtualSize = checkTables(v2, g, opts);
  const features = v3.incompatibleFeatures;
  return {
    version,
    backingFileOffset: v2.backingFileOffset,
    backingFileSize: v2.backingFileSize,
    clusterBits: v2.clusterBits,
    size: v2.size,
    cryptMethod: v2.cryptMethod,
    l1Size: v2.l1Size,
    l1TableOffset: v2.l1TableOffset,
    refcountTableOffset: v2.refcountTableOffset,
    refcountTableClusters: v2.refcountTableClusters,
    nbSnapshots: v2.nbSnapshots,
    snapshotsOffset: v2.snapshotsOffset,
    ...v3,
    geometry: g,
    virtualSize,
    refcountBits: 2 ** v3.refcountOrder,
    dirty: (features & INCOMPAT_DIRTY) !== 0n,
    corrupt: (features & INCOMPAT_CORRUPT) !== 0n,
    lazyRefcounts: (v3.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
    warnings: headerWarnings(v2.size, virtualSize, features),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Walks the header extensions of cluster 0 (qcow2_read_extensions) from `start` to `end`. Bytes
 * past `buf` read as zeros, as QEMU reads past the end of a short file, so a file that ends inside
 * cluster 0 simply ends the list.
 */
export function parseExtensions(buf: Uint8Array, start: number, end: number, h: Pick<Qcow2Header, 'version' | 'autoclearFeatures' | 'cryptMethod' | 'clusterBits'>, file: string, warnings: string[]): Qcow2Extensions {
  const ext: Qcow2Extensions = { featureNames: [], unknown: [] };
  const clusterSize = 2 ** h.clusterBits;
  const seen = new Set<number>();
  let offset = start;
  while (offset < end) {
    if (offset >= buf.length) break; // zeros: the end marker
    const at = offset;
    if (end - offset < HEADER_EXTENSION.size) {
      throw new CorruptImageError('header extension too large: its header crosses the end of the header area', { file, field: 'header extension', offset: at });
    }
    const e = HEADER_EXTENSION.parse(padTo(buf, offset, HEADER_EXTENSION.size), { file, base: offset });
    offset += HEADER_EXTENSION.size;
    if (e.length > end - offset) {
      throw new CorruptImageError(`header extension 0x${e.type.toString(16)} too large: ${e.length} bytes`, {
        file,
        field: 'header extension length',
        offset: at + HEADER_EXTENSION.offsetOf('length'),
      });
    }
    if (e.type === EXT_END) return ext;
    const data = padTo(buf, offset, e.length);
    if (seen.has(e.type) && e.type !== EXT_END) warnings.push(`header extension 0x${e.type.toString(16)} appears more than once; the last one is used`);
    seen.add(e.type);
    switch (e.type) {
      case EXT_BACKING_FORMAT:
        if (e.length > MAX_BACKING_FORMAT) {
          throw new CorruptImageError(`backing format name too long: ${e.length} bytes (at most ${MAX_BACKING_FORMAT})`, { file, field: 'backing format extension', offset: at });
        }
        ext.backingFormat = textUntilNul(data);
        break;
      case EXT_FEATURE_TABLE:
        ext.featureNames = [];
        for (let i = 0; i + FEATURE_NAME_ENTRY.size <= e.length; i += FEATURE_NAME_ENTRY.size) {
          const f = FEATURE_NAME_ENTRY.parse(data, { file, base: offset }, i);
          ext.featureNames.push({ type: f.type, bit: f.bit, name: f.name });
        }
        break;
      case EXT_CRYPTO_HEADER: {
        if (e.length !== CRYPTO_EXTENSION.size) {
          throw new CorruptImageError(`encryption header extension has ${e.length} bytes, expected ${CRYPTO_EXTENSION.size}`, { file, field: 'crypto header extension', offset: at });
        }
        const c = CRYPTO_EXTENSION.parse(data, { file, base: offset });
        ext.cryptoHeader = { offset: c.offset, length: c.length };
        break;
      }
      case EXT_BITMAPS: {
        if (e.length !== BITMAPS_EXTENSION.size) {
          throw new CorruptImageError(`bitmaps extension has ${e.length} bytes, expected ${BITMAPS_EXTENSION.size}`, { file, field: 'bitmaps extension', offset: at });
        }
        if (!(h.autoclearFeatures & AUTOCLEAR_BITMAPS)) {
          // A program without bitmap support rewrote the image: QEMU ignores the bitmaps.
          warnings.push('bitmaps extension present without the autoclear bitmaps bit: the bitmaps are inconsistent and ignored');
          break;
        }
        const b = BITMAPS_EXTENSION.parse(data, { file, base: offset });
        const where = (field: string, off: number) => ({ file, field, offset: offset + off });
        if (b.reserved !== 0) throw new CorruptImageError('bitmaps extension: reserved field is not zero', where('bitmaps reserved', 4));
        if (b.nbBitmaps === 0) throw new CorruptImageError('bitmaps extension with zero bitmaps', where('nb_bitmaps', 0));
        limit(b.nbBitmaps, MAX_BITMAPS, where('nb_bitmaps', 0), 'more bitmaps than QEMU supports');
        if (b.directoryOffset % clusterSize !== 0) {
          throw new CorruptImageError(`bitmap directory offset ${b.directoryOffset} is not cluster aligned`, where('bitmap_directory_offset', 16));
        }
        limit(b.directorySize, MAX_BITMAP_DIRECTORY_BYTES, where('bitmap_directory_size', 8), 'bitmap directory too large');
        ext.bitmaps = { nbBitmaps: b.nbBitmaps, directorySize: b.directorySize, directoryOffset: b.directoryOffset };
        break;
      }
      case EXT_DATA_FILE:
        ext.dataFile = utf8.decode(data.subarray(0, e.length)).split('\0')[0];
        break;
      default:
        ext.unknown.push({ type: e.type, length: e.length, offset: at });
    }
    offset += Math.ceil(e.length / 8) * 8;
  }
  return ext;
}

/** `length` bytes of `buf` at `at`, zero-padded where `buf` ends (QEMU reads zeros past EOF). */
function padTo(buf: Uint8Array, at: number, length: number): Uint8Array {
  if (at + length <= buf.length) return buf.subarray(at, at + length);
  const out = new Uint8Array(length);
  if (at < buf.length) out.set(buf.subarray(at));
  return out;
}

/** Names unknown incompatible bits, using the image's own feature table when it has names. */
function unknownIncompatible(bits: bigint, names: FeatureName[]): string {
  const parts: string[] = [];
  for (let b = 0; b < 64; b++) {
    if (!(bits & (1n << BigInt(b)))) continue;
    const n = names.find((f) => f.type === FEATURE_TYPE_INCOMPAT && f.bit === b)?.name;
    parts.push(n ? `bit ${b} (${n})` : `bit ${b}`);
  }
  return parts.join(', ');
}

/**
 * The active L1 table must lie in the file: it is read whole, and a table that is not there must
 * not decide an allocation (QEMU would read zeros past EOF).
 */
export function requireL1InFile(h: Pick<Qcow2Header, 'l1Size' | 'l1TableOffset'>, fileSize: number, file: string): void {
  if (h.l1TableOffset + h.l1Size * 8 > fileSize) {
    throw new CorruptImageError(`L1 table (${h.l1Size} entries at ${h.l1TableOffset}) lies past the end of the file (${fileSize} bytes)`, headerField(file, 'l1TableOffset'));
  }
}

/**
 * Reads and validates the whole header: fixed fields, extensions, backing file name. `fileSize`
 * bounds every read.
 */
export async function readHeader(source: ByteSource, opts: HeaderParseOptions): Promise<Qcow2Header> {
  const file = opts.file;
  const fileSize = source.size ?? Number.MAX_SAFE_INTEGER;
  const head = await source.readUpTo(0, FIXED_HEADER_BYTES);
  const fixed = parseFixedHeader(head, opts);
  const clusterSize = fixed.geometry.clusterSize;
  // Cluster 0 holds the header, its extensions and the backing file name; read what the file has of it.
  const cluster0 = await source.readUpTo(0, Math.min(clusterSize, fileSize));
  const extStart = fixed.version === 3 ? fixed.headerLength : V2_HEADER_LENGTH;
  // Extensions end where the backing file name begins, else at the end of cluster 0.
  const extEnd = fixed.backingFileOffset !== 0 ? fixed.backingFileOffset : clusterSize;
  const warnings = fixed.warnings;
  const extensions = parseExtensions(cluster0, extStart, extEnd, fixed, file, warnings);

  const unknown = fixed.incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknown) {
    throw new UnsupportedFeatureError(`unsupported incompatible feature ${unknownIncompatible(unknown, extensions.featureNames)} is set`, headerField(file, 'incompatibleFeatures'));
  }
  const hasDataFile = (fixed.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n;
  const dataFileRaw = (fixed.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  if (dataFileRaw && !hasDataFile) {
    throw new CorruptImageError('data-file-raw is set but the image has no external data file', headerField(file, 'autoclearFeatures'));
  }
  if (hasDataFile && extensions.dataFile === undefined) {
    throw new UnsupportedFeatureError('image uses an external data file but does not name it (QEMU needs -o data-file=…)', headerField(file, 'incompatibleFeatures'));
  }
  if (extensions.cryptoHeader) {
    throw new CorruptImageError('encryption header extension in an image without LUKS encryption', { file, field: 'crypto header extension' });
  }

  let backingFile: string | undefined;
  if (fixed.backingFileOffset !== 0 && fixed.backingFileSize > 0) {
    const name = await source.readUpTo(fixed.backingFileOffset, fixed.backingFileSize);
    // QEMU keeps the name as a C string: a NUL inside ends it.
    backingFile = textUntilNul(name);
    if (backingFile === '') backingFile = undefined;
  }
  return { ...fixed, extensions, backingFile, hasDataFile, dataFileRaw, warnings };
}
