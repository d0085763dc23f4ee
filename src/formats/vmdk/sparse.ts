/**
 * Opening a hosted sparse extent ("KDMV", docs/FORMATS.md §3.3–3.5) from a random-access source:
 * header (or, for a stream-optimized extent whose gdOffset is GD_AT_END, the footer that replaces
 * it), bounds on every size it states, and the grain directory — the primary one, or the redundant
 * one when the primary is damaged.
 */
import { CorruptImageError, LimitExceededError, TruncatedImageError, UnsupportedFeatureError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { textUntilNul } from '../shared/text.js';
import { U32Table, isUniform } from '../shared/u32-table.js';
import { GrainTableExtent } from './grain-table.js';
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  FLAG_MARKERS,
  FLAG_REDUNDANT_GD,
  FLAG_ZEROED_GRAIN_GTE,
  GD_AT_END,
  INCOMPATIBLE_FLAGS_MASK,
  KNOWN_INCOMPATIBLE_FLAGS,
  MARKER_EOS,
  MARKER_FOOTER,
  MAX_COMPRESSED_GRAIN_SECTORS,
  MAX_DESCRIPTOR_BYTES,
  MAX_GD_ENTRIES,
  MAX_GRAIN_SECTORS,
  MAX_GTES_PER_GT,
  METADATA_MARKER,
  SECTOR,
  SPARSE_HEADER,
  SPARSE_MAGIC_LE,
  type SparseHeader,
} from './layout.js';

/** A sparse header whose sizes have been bounded and turned into safe numbers. */
export interface SparseGeometry {
  header: SparseHeader;
  capacitySectors: number;
  grainSectors: number;
  gtEntries: number;
  gdEntries: number;
  compressed: boolean;
  markers: boolean;
  zeroedGrains: boolean;
}

/**
 * Checks a sparse header the way QEMU's vmdk_open_vmdk4 does, with typed errors: unsupported
 * version, oversized tables ("L2 table size too big", "L1 size too big", "Invalid granularity").
 * Needs no file: the stream reader uses it on a pipe too.
 */
export function checkSparseHeader(h: SparseHeader, file: string, base = 0): SparseGeometry {
  const at = (f: keyof SparseHeader) => ({ file, field: f, offset: base + SPARSE_HEADER.offsetOf(f) });
  if (h.magic !== SPARSE_MAGIC_LE) throw new CorruptImageError('not a VMDK sparse extent (no KDMV magic)', at('magic'));
  if (h.version > 3) throw new UnsupportedFeatureError(`VMDK sparse extent version ${h.version} is not supported (1 to 3)`, at('version'));
  const unknown = (h.flags & INCOMPATIBLE_FLAGS_MASK & ~KNOWN_INCOMPATIBLE_FLAGS) >>> 0;
  if (unknown) throw new UnsupportedFeatureError(`unknown incompatible header flags 0x${unknown.toString(16)}`, at('flags'));
  if (h.compressAlgorithm !== COMPRESSION_NONE && h.compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw new UnsupportedFeatureError(`compression algorithm ${h.compressAlgorithm} is not supported (only deflate)`, at('compressAlgorithm'));
  }
  if (h.numGTEsPerGT > MAX_GTES_PER_GT) {
    throw new CorruptImageError(`grain table size ${h.numGTEsPerGT} is too big (at most ${MAX_GTES_PER_GT} entries)`, at('numGTEsPerGT'));
  }
  if (h.numGTEsPerGT === 0 || h.grainSize === 0n) throw new CorruptImageError('grain size and grain table size must not be 0', at(h.grainSize === 0n ? 'grainSize' : 'numGTEsPerGT'));
  if (h.grainSize > BigInt(MAX_GRAIN_SECTORS)) {
    throw new LimitExceededError(`grain size of ${h.grainSize} sectors is unrealistic (at most ${MAX_GRAIN_SECTORS}); the image may be corrupt`, at('grainSize'));
  }
  if (h.compressAlgorithm === COMPRESSION_DEFLATE && h.grainSize > BigInt(MAX_COMPRESSED_GRAIN_SECTORS)) {
    throw new LimitExceededError(`compressed grains of ${h.grainSize} sectors are larger than supported (${MAX_COMPRESSED_GRAIN_SECTORS})`, at('grainSize'));
  }
  const span = BigInt(h.numGTEsPerGT) * h.grainSize;
  const gdEntries = (h.capacity + span - 1n) / span;
  if (gdEntries > BigInt(MAX_GD_ENTRIES)) {
    // QEMU: "L1 size too big" (the malicious-huge-l1 and afl9 samples).
    throw new LimitExceededError(`grain directory of ${gdEntries} entries is too big (limit ${MAX_GD_ENTRIES}) for capacity ${h.capacity} sectors`, at('capacity'));
  }
  if (h.capacity * BigInt(SECTOR) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new LimitExceededError(`capacity of ${h.capacity} sectors is larger than supported (2^53 bytes)`, at('capacity'));
  }
  return {
    header: h,
    capacitySectors: Number(h.capacity),
    grainSectors: Number(h.grainSize),
    gtEntries: h.numGTEsPerGT,
    gdEntries: Number(gdEntries),
    // QEMU decides by the algorithm field alone.
    compressed: h.compressAlgorithm === COMPRESSION_DEFLATE,
    markers: (h.flags & FLAG_MARKERS) !== 0,
    zeroedGrains: (h.flags & FLAG_ZEROED_GRAIN_GTE) !== 0,
  };
}

/** Sector size of a file, rounded up as QEMU's bdrv_nb_sectors does. */
const fileSectors = (size: number) => Math.ceil(size / SECTOR);

/**
 * The footer of a stream-optimized extent: footer marker, a copy of the header with the real
 * gdOffset, end-of-stream marker, in the last three sectors (§3.5; QEMU validates all three).
 */
async function readFooter(source: ByteSource, file: string): Promise<SparseHeader> {
  const size = source.size!;
  const pos = fileSectors(size) * SECTOR - 3 * SECTOR;
  if (pos < SECTOR) throw new TruncatedImageError('file is too short to hold the stream footer', { file, field: 'footer', offset: 0 });
  // QEMU reads past an unaligned end as zeros.
  const buf = new Uint8Array(3 * SECTOR);
  buf.set(await source.readUpTo(pos, 3 * SECTOR));
  const marker = METADATA_MARKER.parse(buf, { file, base: pos });
  const eos = METADATA_MARKER.parse(buf, { file, base: pos + 2 * SECTOR }, 2 * SECTOR);
  const footer = SPARSE_HEADER.parse(buf, { file, base: pos + SECTOR }, SECTOR);
  if (marker.size !== 0 || marker.type !== MARKER_FOOTER || footer.magic !== SPARSE_MAGIC_LE || eos.numSectors !== 0n || eos.size !== 0 || eos.type !== MARKER_EOS) {
    throw new CorruptImageError('invalid stream footer: the header says the grain directory is at the end, but no footer is there', {
      file,
      field: 'footer',
      offset: pos,
    });
  }
  return footer;
}

function gdTable(source: ByteSource, file: string, sector: number, entries: number, field: string): U32Table {
  return new U32Table({ source, file, offset: sector * SECTOR, entries, littleEndian: true, field });
}

/**
 * Index of the first GD entry whose grain table does not lie inside the file, or -1. Streams the
 * directory (up to 32 Mi entries) rather than holding it.
 */
export async function firstBadGdEntry(gd: U32Table, gtBytes: number, fileSize: number): Promise<number> {
  const lastSector = (fileSize - gtBytes) / SECTOR;
  let bad = -1;
  await gd.walk((start, entries) => {
    if (bad >= 0) return;
    if (isUniform(entries)) {
      if (entries[0] !== 0 && entries[0] > lastSector) bad = start;
      return;
    }
    for (let i = 0; i < entries.length; i++) {
      if (entries[i] !== 0 && entries[i] > lastSector) {
        bad = start + i;
        return;
      }
    }
  });
  return bad;
}

export interface OpenedSparse {
  extent: GrainTableExtent;
  geometry: SparseGeometry;
  /** Embedded descriptor text (up to the first NUL), when the header points to one. */
  descriptorText?: string;
  descriptorOffset: number;
}

export interface SparseOpenOptions {
  /** Display name for errors. */
  file: string;
  /** Descriptor type for info ('' when the file was opened directly). */
  format: string;
  /** Read the embedded descriptor (not for the extents of a split disk, whose area is empty). */
  readDescriptor: boolean;
}

/** Reads the header at offset 0 (without validating it). */
export async function readSparseHeader(source: ByteSource, file: string): Promise<SparseHeader> {
  return SPARSE_HEADER.parse(await source.read(0, SECTOR), { file });
}

export async function openSparseExtent(source: ByteSource, opts: SparseOpenOptions): Promise<OpenedSparse> {
  const { file } = opts;
  const size = source.size;
  if (size === undefined || !source.seekable) throw new UnsupportedFeatureError('a sparse VMDK extent needs a random-access file', { file });
  let header = await readSparseHeader(source, file);
  let headerBase = 0;
  if (header.gdOffset === GD_AT_END) {
    header = await readFooter(source, file);
    headerBase = fileSectors(size) * SECTOR - 2 * SECTOR;
  }
  const g = checkSparseHeader(header, file, headerBase);
  const h = g.header;
  const warnings: string[] = [];
  if (h.overHead > fileSectors(size)) {
    throw new TruncatedImageError(`file truncated: the header promises at least ${h.overHead * SECTOR} bytes, the file has ${size}`, {
      file,
      field: 'overHead',
      offset: headerBase + SPARSE_HEADER.offsetOf('overHead'),
    });
  }
  if (h.gdOffset === GD_AT_END) {
    throw new CorruptImageError('the stream footer does not give the grain directory location', { file, field: 'gdOffset', offset: headerBase + SPARSE_HEADER.offsetOf('gdOffset') });
  }
  const gtBytes = g.gtEntries * 4;
  const gdOffsetField = { file, field: 'gdOffset', offset: headerBase + SPARSE_HEADER.offsetOf('gdOffset') };
  if (h.gdOffset > BigInt(Math.floor(size / SECTOR))) {
    // Checked before converting: a hostile 64-bit offset must not become an unsafe number.
    if (!(h.flags & FLAG_REDUNDANT_GD)) throw new TruncatedImageError(`grain directory sector ${h.gdOffset} lies past the end of the file`, gdOffsetField);
  }
  const gdSector = h.gdOffset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(h.gdOffset) : Number.MAX_SAFE_INTEGER;

  // Primary directory, or the redundant one when the primary is unreadable or points outside the file.
  let gd: U32Table | undefined;
  let gdAt = gdSector * SECTOR;
  let primaryError: unknown;
  try {
    if (gdSector === 0 && g.gdEntries > 0) throw new CorruptImageError('grain directory offset is 0', gdOffsetField);
    gd = gdTable(source, file, gdSector, g.gdEntries, 'grain directory');
    const bad = await firstBadGdEntry(gd, gtBytes, size);
    if (bad >= 0) {
      throw new CorruptImageError(`grain directory entry ${bad} points to sector ${await gd.at(bad)}, past the end of the file`, {
        file,
        field: 'grain directory entry',
        offset: gdAt + bad * 4,
      });
    }
  } catch (e) {
    primaryError = e;
    gd = undefined;
  }
  let damage: string | undefined;
  let redundant: U32Table | undefined;
  if (h.flags & FLAG_REDUNDANT_GD && h.rgdOffset > 0 && h.rgdOffset !== gdSector) {
    try {
      redundant = gdTable(source, file, h.rgdOffset, g.gdEntries, 'redundant grain directory');
      if ((await firstBadGdEntry(redundant, gtBytes, size)) >= 0) redundant = undefined;
    } catch {
      redundant = undefined;
    }
  }
  if (!gd) {
    if (!redundant) throw primaryError;
    const why = primaryError instanceof Error && 'detail' in primaryError ? (primaryError as CorruptImageError).detail : String(primaryError);
    damage = `primary grain directory is damaged (${why}); using the redundant copy`;
    warnings.push(damage);
    gd = redundant;
    gdAt = h.rgdOffset * SECTOR;
    redundant = undefined;
  }

  let descriptorText: string | undefined;
  if (opts.readDescriptor && h.descriptorOffset > 0 && h.descriptorSize > 0) {
    const at = h.descriptorOffset * SECTOR;
    const len = Math.min(h.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES, Math.max(0, size - at));
    if (at < size) descriptorText = textUntilNul(await source.read(at, len));
  }

  const extent = new GrainTableExtent({
    source,
    length: g.capacitySectors * SECTOR,
    grainSectors: g.grainSectors,
    gtEntries: g.gtEntries,
    gd,
    gdOffset: gdAt,
    redundantGd: redundant,
    zeroedGrains: g.zeroedGrains,
    compressed: g.compressed,
    markers: g.markers,
    format: opts.format,
    warnings,
    damage,
  });
  return { extent, geometry: g, descriptorText, descriptorOffset: h.descriptorOffset * SECTOR };
}
