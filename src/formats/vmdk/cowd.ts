/**
 * ESX "COWD" sparse extents (createType vmfsSparse, the `-delta.vmdk` of ESX 2/3 snapshots;
 * docs/FORMATS.md §3.6, libvmdk documentation). Read-only: a 2048-byte header, a grain directory of
 * `numGDEntries` sector numbers, grain tables of 4096 entries, uncompressed grains.
 */
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { within } from '../shared/bounds.js';
import { U32Table } from '../shared/u32-table.js';
import { GrainTableExtent } from './grain-table.js';
import { COWD_GTES_PER_GT, COWD_HEADER, COWD_MAGIC_LE, MAX_GD_ENTRIES, MAX_GRAIN_SECTORS, SECTOR, type CowdHeader } from './layout.js';
import { firstBadGdEntry } from './sparse.js';

export interface OpenedCowd {
  extent: GrainTableExtent;
  header: CowdHeader;
}

export async function openCowdExtent(source: ByteSource, opts: { file: string; format: string }): Promise<OpenedCowd> {
  const { file } = opts;
  const size = source.size;
  if (size === undefined || !source.seekable) throw new UnsupportedFeatureError('a COWD extent needs a random-access file', { file });
  const raw = await source.read(0, Math.min(size, COWD_HEADER.size));
  const h = COWD_HEADER.parse(raw, { file });
  const at = (f: keyof CowdHeader) => ({ file, field: f, offset: COWD_HEADER.offsetOf(f) });
  if (h.magic !== COWD_MAGIC_LE) throw new CorruptImageError('not a COWD extent', at('magic'));
  if (h.version !== 1) throw new UnsupportedFeatureError(`COWD version ${h.version} is not supported (1)`, at('version'));
  if (h.grainSize === 0) throw new CorruptImageError('grain size must not be 0', at('grainSize'));
  if (h.grainSize > MAX_GRAIN_SECTORS) throw new LimitExceededError(`grain size of ${h.grainSize} sectors is unrealistic`, at('grainSize'));
  if (h.numGDEntries > MAX_GD_ENTRIES) throw new LimitExceededError(`grain directory of ${h.numGDEntries} entries is too big`, at('numGDEntries'));
  const span = COWD_GTES_PER_GT * h.grainSize;
  if (h.numGDEntries * span < h.capacity) {
    throw new CorruptImageError(`grain directory of ${h.numGDEntries} entries does not cover the capacity of ${h.capacity} sectors`, at('numGDEntries'));
  }
  const gdAt = h.gdOffset * SECTOR;
  within(gdAt, h.numGDEntries * 4, size, { file, field: 'grain directory', offset: gdAt });
  const gd = new U32Table({ source, file, offset: gdAt, entries: h.numGDEntries, littleEndian: true, field: 'grain directory' });
  const bad = await firstBadGdEntry(gd, COWD_GTES_PER_GT * 4, size);
  if (bad >= 0) {
    throw new CorruptImageError(`grain directory entry ${bad} points to sector ${await gd.at(bad)}, past the end of the file`, {
      file,
      field: 'grain directory entry',
      offset: gdAt + bad * 4,
    });
  }
  const extent = new GrainTableExtent({
    source,
    length: h.capacity * SECTOR,
    grainSectors: h.grainSize,
    gtEntries: COWD_GTES_PER_GT,
    gd,
    gdOffset: gdAt,
    zeroedGrains: false,
    compressed: false,
    markers: false,
    format: opts.format,
    warnings: [],
  });
  return { extent, header: h };
}
