/**
 * openGuest: the storage stack of one machine — its disks as /dev/sdX, their partition tables,
 * LVM2 volume groups (over several disks), and what each block device holds — all read through
 * ImageReader views, whatever the image formats. Names follow libguestfs so users can move
 * between virt-filesystems and guestkit.
 */
import { GuestkitError, UsageError, type ErrorContext } from '../errors.js';
import { openImage, type OpenOptions } from '../formats/open.js';
import type { ImageReader } from '../formats/types.js';
import { devicesOf } from './devices.js';
import { readPartitionTable, type Partition, type PartitionTable } from './partitions/index.js';
import { GPT_TYPE, MBR_LDM } from './partitions/types.js';
import { identify, type Identification } from './probe.js';
import { NOT_OPENED, scanLvm, type LogicalVolume, type PhysicalVolume, type VolumeGroup } from './volumes/index.js';
import { RangeView, type BlockView, type DiskView } from './view.js';

export interface GuestDevice {
  /** /dev/sda, /dev/sdb, … in the order the images were given. */
  name: string;
  /** The image file (or reader description) behind the device. */
  source: string;
  size: number;
  /** The partition table, or undefined for a whole-disk filesystem or a blank disk. */
  table?: PartitionTable;
  view: DiskView;
}

export interface GuestPartition extends Partition {
  /** The device the partition is on. */
  parent: string;
  /** The size Linux gives the block device: an extended partition is a 1 KiB stub (block/partitions/msdos.c). */
  blockSize: number;
  view: BlockView;
}

export interface GuestFilesystem extends Partial<Identification> {
  /** The block device: /dev/sda1, /dev/sdb, /dev/VG/LV. */
  device: string;
  /** blkid's TYPE, or "unknown" when nothing was recognised (libguestfs's word). */
  type: string;
  /** Size of the block device holding it. */
  size: number;
  /** The device it lies on: the disk of a partition, /dev/VG of an LV, none for a whole disk. */
  parent?: string;
  view: BlockView;
}

export interface Guest {
  devices: GuestDevice[];
  partitions: GuestPartition[];
  pvs: PhysicalVolume[];
  vgs: VolumeGroup[];
  lvs: LogicalVolume[];
  /** Every block device that may hold a filesystem, with what it holds (LVM PVs and other *_member excluded, as libguestfs's list_filesystems does). */
  filesystems: GuestFilesystem[];
  /** Non-fatal observations: backup GPT used, hybrid MBR, missing PVs, containers not opened. */
  warnings: string[];
  /** Bytes read from the images so far. */
  bytesRead(): number;
  close(): Promise<void>;
}

export type GuestInput = string | { reader: ImageReader; name?: string };

/** GPT types that never hold a filesystem libguestfs lists (listfs.ml's partition type filter). */
const NO_FILESYSTEM_GPT = new Set<string>([GPT_TYPE.msReserved, GPT_TYPE.ldmMetadata, GPT_TYPE.ldmData, GPT_TYPE.biosBoot]);
/** Linux sizes an extended partition's block device at 2 sectors, room for a boot loader, so nothing mkfs's it. */
const EXTENDED_BLOCK_SIZE = 1024;

/** A damaged structure of /dev/sdb is reported with the image it came from, so users of several disks know which file to look at. */
function withImage(e: unknown, device: string, source: string): unknown {
  if (!(e instanceof GuestkitError) || e.file !== device) return e;
  const Kind = e.constructor as new (detail: string, ctx: ErrorContext) => GuestkitError;
  return new Kind(e.detail, { file: `${source} (${device})`, field: e.field, offset: e.offset, cause: e });
}

async function openInputs(inputs: readonly GuestInput[], opts: OpenOptions): Promise<{ reader: ImageReader; source: string; owned: boolean }[]> {
  const out: { reader: ImageReader; source: string; owned: boolean }[] = [];
  try {
    for (const input of inputs) {
      if (typeof input === 'string') out.push({ reader: await openImage(input, opts), source: input, owned: true });
      else out.push({ reader: input.reader, source: input.name ?? input.reader.format, owned: false });
    }
  } catch (e) {
    await Promise.all(out.filter((o) => o.owned).map((o) => o.reader.close().catch(() => {})));
    throw e;
  }
  return out;
}

export async function openGuest(inputs: readonly GuestInput[], opts: OpenOptions = {}): Promise<Guest> {
  if (inputs.length === 0) throw new UsageError('no disk images given');
  const opened = await openInputs(inputs, opts);
  const close = async () => {
    await Promise.all(opened.filter((o) => o.owned).map((o) => o.reader.close()));
  };
  try {
    return await assemble(opened, close);
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

async function assemble(opened: { reader: ImageReader; source: string }[], close: () => Promise<void>): Promise<Guest> {
  const warnings: string[] = [];
  const devices: GuestDevice[] = [];
  const partitions: GuestPartition[] = [];
  /** Block devices that may hold something, in libguestfs's order: whole unpartitioned disks and partitions. */
  const candidates: { view: BlockView; parent?: string; partition?: Partition }[] = [];
  for (const d of devicesOf(opened)) {
    const table = await readPartitionTable(d.view).catch((e) => {
      throw withImage(e, d.name, d.source);
    });
    devices.push({ name: d.name, source: d.source, size: d.view.size, table, view: d.view });
    if (!table) {
      candidates.push({ view: d.view });
      continue;
    }
    warnings.push(...table.warnings.map((w) => `${d.name}: ${w}`));
    if (table.partitions.some((p) => p.mbrType === MBR_LDM || p.gptType === GPT_TYPE.ldmMetadata)) {
      warnings.push(`${d.name}: Windows dynamic disk (LDM): its volumes are not opened`);
    }
    for (const p of [...table.partitions].sort((a, b) => a.number - b.number)) {
      const view = new RangeView(d.view, p.start, p.size, p.device);
      partitions.push({ ...p, parent: d.name, blockSize: p.extended ? Math.min(EXTENDED_BLOCK_SIZE, p.size) : p.size, view });
      if (p.extended || (p.gptType && NO_FILESYSTEM_GPT.has(p.gptType)) || p.mbrType === MBR_LDM) continue;
      candidates.push({ view, parent: d.name, partition: p });
    }
  }

  const lvm = await scanLvm(candidates.map((c) => c.view));
  warnings.push(...lvm.warnings);
  const pvDevices = new Set(lvm.pvs.map((p) => p.device));
  const lvs = lvm.vgs.flatMap((vg) => vg.lvs);
  for (const lv of lvs) {
    if (lv.unsupported) warnings.push(`${lv.device}: ${lv.unsupported} logical volumes are not supported; not opened`);
  }

  const filesystems: GuestFilesystem[] = [];
  const add = async (view: BlockView, parent: string | undefined) => {
    const id = await identify(view);
    // LVM PVs, MD and ZFS members are not filesystems (libguestfs's list_filesystems drops *_member).
    if (id?.type.endsWith('_member')) return;
    if (id && NOT_OPENED[id.type]) warnings.push(`${view.name}: ${NOT_OPENED[id.type]}`);
    filesystems.push({ ...id, device: view.name, type: id?.type ?? 'unknown', size: view.size, ...(parent ? { parent } : {}), view });
  };
  for (const c of candidates) if (!pvDevices.has(c.view.name)) await add(c.view, c.parent);
  for (const lv of lvs) if (lv.view) await add(lv.view, `/dev/${lv.vgName}`);

  return {
    devices,
    partitions,
    pvs: lvm.pvs,
    vgs: lvm.vgs,
    lvs,
    filesystems,
    warnings,
    bytesRead: () => devices.reduce((n, d) => n + d.view.bytesRead, 0),
    close,
  };
}
