/**
 * Volume groups assembled from the physical volumes found on every disk of a machine: the newest
 * metadata (highest seqno) of each VG, its PVs matched by uuid, its visible LVs as views. Linear
 * and striped LVs are opened; thin, RAID, mirror, cache and snapshot LVs are reported as
 * unsupported by their segment type, never read as if they were linear.
 */
import { CorruptImageError, LimitExceededError } from '../../../errors.js';
import { parseConfig, type ConfigSection } from './config.js';
import { readMetadataText, readPvLabel, type PvLabel } from './label.js';
import { LvView, type MappedSegment } from './lv-view.js';
import { segmentSchema, vgSchema, type VgMetadata } from './schema.js';
import type { BlockView } from '../../view.js';

const SECTOR = 512;
/** Real LVs have a few segments; a fragmented one a few hundred. */
export const MAX_SEGMENTS = 65536;
/** LVM's own limit on stripes (lib/metadata/metadata-exported.h MAX_STRIPES). */
export const MAX_STRIPES = 128;

export interface PhysicalVolume {
  /** The device or partition the PV is on (/dev/sda2). */
  device: string;
  view: BlockView;
  /** LVM's 32-character id, without dashes (virt-filesystems prints it so). */
  uuid: string;
  label: PvLabel;
  vgName?: string;
  /** Usable size: extents × extent size inside a VG, else the device size. */
  size: number;
}

export interface LogicalVolume {
  /** /dev/VG/LV, libguestfs's name. */
  device: string;
  vgName: string;
  name: string;
  uuid: string;
  size: number;
  /** The segment type that keeps us from reading it (thin, raid1, mirror, cache, snapshot, …). */
  unsupported?: string;
  /** PV ids the LV needs that were not found on any disk. */
  missingPvs?: string[];
  view?: BlockView;
}

export interface VolumeGroup {
  name: string;
  uuid: string;
  seqno: number;
  extentSize: number;
  size: number;
  pvs: PhysicalVolume[];
  /** PV ids the metadata names that no disk holds. */
  missingPvs: string[];
  lvs: LogicalVolume[];
}

export interface LvmScan {
  pvs: PhysicalVolume[];
  vgs: VolumeGroup[];
  warnings: string[];
}

const raw = (id: string): string => id.replace(/-/g, '');

interface Found {
  pv: PhysicalVolume;
  vgName: string;
  meta: VgMetadata;
}

export function metadataOf(text: string, file: string): { vgName: string; meta: VgMetadata } {
  const tree = parseConfig(text, file);
  const names = Object.keys(tree).filter((k) => typeof tree[k] === 'object' && !Array.isArray(tree[k]));
  if (names.length !== 1) throw new CorruptImageError(`LVM metadata names ${names.length} volume groups, expected 1`, { file, field: 'LVM metadata text' });
  const parsed = vgSchema.safeParse(tree[names[0]]);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorruptImageError(`LVM metadata of ${names[0]}: ${issue.path.join('.')}: ${issue.message}`, { file, field: `LVM metadata ${issue.path.join('.')}` });
  }
  return { vgName: names[0], meta: parsed.data };
}

/** The PV on `view`, with the metadata of its VG when its metadata area holds any. */
async function scanPv(view: BlockView, warnings: string[]): Promise<Found | { pv: PhysicalVolume } | undefined> {
  const label = await readPvLabel(view);
  if (!label) return undefined;
  const pv: PhysicalVolume = { device: view.name, view, uuid: label.uuid, label, size: label.deviceSize || view.size };
  for (const area of label.metadataAreas) {
    const text = await readMetadataText(view, area);
    if (typeof text !== 'string') {
      warnings.push(`${view.name}: LVM ${text.problem}; looking for another copy`);
      continue;
    }
    const { vgName, meta } = metadataOf(text, view.name);
    pv.vgName = vgName;
    return { pv, vgName, meta };
  }
  return { pv };
}

export function buildLvs(vgName: string, meta: VgMetadata, pvById: Map<string, PhysicalVolume>, file: string): LogicalVolume[] {
  const extent = meta.extent_size * SECTOR;
  const out: LogicalVolume[] = [];
  for (const [name, lv] of Object.entries(meta.logical_volumes ?? {})) {
    // Hidden LVs (pool data/metadata, mirror legs, snapshot origins' COW) are parts of other LVs.
    if (!lv.status.includes('VISIBLE')) continue;
    const where = { file, field: `LVM metadata ${vgName}/${name}` };
    if (lv.segment_count > MAX_SEGMENTS) throw new LimitExceededError(`LV ${name} has ${lv.segment_count} segments, more than ${MAX_SEGMENTS}`, where);
    const result: LogicalVolume = { device: `/dev/${vgName}/${name}`, vgName, name, uuid: raw(lv.id), size: 0 };
    const segments: MappedSegment[] = [];
    const missing = new Set<string>();
    for (let i = 1; i <= lv.segment_count; i++) {
      const parsed = segmentSchema.safeParse((lv as ConfigSection)[`segment${i}`]);
      if (!parsed.success) throw new CorruptImageError(`LV ${name} segment${i}: ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`, where);
      const seg = parsed.data;
      result.size = Math.max(result.size, (seg.start_extent + seg.extent_count) * extent);
      if (seg.type !== 'striped' && seg.type !== 'linear') {
        result.unsupported ??= seg.type;
        continue;
      }
      const stripes = seg.stripes ?? [];
      const n = seg.stripe_count ?? 1;
      if (n < 1 || n > MAX_STRIPES || stripes.length !== 2 * n || seg.extent_count % n !== 0) {
        throw new CorruptImageError(`LV ${name} segment${i}: ${n} stripes do not match the stripes list`, where);
      }
      const perStripe = (seg.extent_count / n) * extent;
      const mapped: MappedSegment = { start: seg.start_extent * extent, length: seg.extent_count * extent, stripes: [], stripeSize: (seg.stripe_size ?? 0) * SECTOR };
      if (n > 1 && (mapped.stripeSize <= 0 || perStripe % mapped.stripeSize !== 0)) throw new CorruptImageError(`LV ${name} segment${i}: stripe size ${seg.stripe_size} sectors`, where);
      for (let s = 0; s < n; s++) {
        const pvKey = stripes[2 * s];
        const pe = stripes[2 * s + 1];
        if (typeof pvKey !== 'string' || typeof pe !== 'number') throw new CorruptImageError(`LV ${name} segment${i}: stripe ${s} is not ("pvN", extent)`, where);
        const pvMeta = meta.physical_volumes[pvKey];
        if (!pvMeta) throw new CorruptImageError(`LV ${name} segment${i} names ${pvKey}, which the VG does not list`, where);
        if (pe + seg.extent_count / n > pvMeta.pe_count) throw new CorruptImageError(`LV ${name} segment${i} uses extents ${pe}+${seg.extent_count / n} of ${pvKey}, which has ${pvMeta.pe_count}`, where);
        const pv = pvById.get(raw(pvMeta.id));
        if (!pv) {
          missing.add(raw(pvMeta.id));
          continue;
        }
        const offset = pvMeta.pe_start * SECTOR + pe * extent;
        if (offset + perStripe > pv.view.size) throw new CorruptImageError(`LV ${name} segment${i} runs past the end of ${pv.device}`, where);
        mapped.stripes.push({ pv: pv.view, offset });
      }
      segments.push(mapped);
    }
    if (missing.size) result.missingPvs = [...missing];
    else if (!result.unsupported) result.view = new LvView(result.device, result.size, segments);
    out.push(result);
  }
  return out;
}

/** Finds LVM2 PVs among `views` (whole disks and partitions) and assembles their VGs. */
export async function scanLvm(views: readonly BlockView[]): Promise<LvmScan> {
  const warnings: string[] = [];
  const pvs: PhysicalVolume[] = [];
  const newest = new Map<string, { vgName: string; meta: VgMetadata; file: string }>();
  for (const view of views) {
    const found = await scanPv(view, warnings);
    if (!found) continue;
    pvs.push(found.pv);
    if (!('meta' in found)) continue;
    const key = raw(found.meta.id);
    const have = newest.get(key);
    if (!have || found.meta.seqno > have.meta.seqno) newest.set(key, { vgName: found.vgName, meta: found.meta, file: view.name });
  }
  const pvById = new Map(pvs.map((p) => [p.uuid, p]));
  const vgs: VolumeGroup[] = [];
  for (const [uuid, { vgName, meta, file }] of newest) {
    const extentSize = meta.extent_size * SECTOR;
    const members: PhysicalVolume[] = [];
    const missingPvs: string[] = [];
    let size = 0;
    for (const pvMeta of Object.values(meta.physical_volumes)) {
      size += pvMeta.pe_count * extentSize;
      const pv = pvById.get(raw(pvMeta.id));
      if (!pv) {
        missingPvs.push(raw(pvMeta.id));
        continue;
      }
      pv.vgName = vgName;
      pv.size = pvMeta.pe_count * extentSize;
      members.push(pv);
    }
    if (missingPvs.length) warnings.push(`volume group ${vgName} is missing ${missingPvs.length} physical volume(s): ${missingPvs.join(', ')}`);
    vgs.push({ name: vgName, uuid, seqno: meta.seqno, extentSize, size, pvs: members, missingPvs, lvs: buildLvs(vgName, meta, pvById, file) });
  }
  return { pvs, vgs, warnings };
}
