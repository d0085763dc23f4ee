/**
 * The rows `virt-filesystems` prints (cat/filesystems.c): filesystems, then LVs, VGs, PVs,
 * partitions and block devices, each with name, type, vfs, label, mbr, size, parent, uuid.
 * LVM ids are printed as LVM stores them, 32 characters without dashes.
 */
import type { Guest } from './guest.js';

export interface FilesystemRow {
  name: string;
  type: 'filesystem' | 'lv' | 'vg' | 'pv' | 'partition' | 'device';
  vfs: string | null;
  label: string | null;
  /** The MBR partition type byte as two hex digits (MBR partitions only). */
  mbr: string | null;
  size: number;
  parent: string | null;
  uuid: string | null;
}

export interface RowSelection {
  filesystems?: boolean;
  /** Swap and unrecognised filesystems too (virt-filesystems --extra). */
  extra?: boolean;
  lvs?: boolean;
  vgs?: boolean;
  pvs?: boolean;
  partitions?: boolean;
  blockDevices?: boolean;
}

export const ALL_ROWS: RowSelection = { filesystems: true, extra: true, lvs: true, vgs: true, pvs: true, partitions: true, blockDevices: true };

export function filesystemRows(g: Guest, sel: RowSelection): FilesystemRow[] {
  const rows: FilesystemRow[] = [];
  // Keys in the column order of virt-filesystems, which JSON output keeps.
  const row = (r: Partial<FilesystemRow> & Pick<FilesystemRow, 'name' | 'type' | 'size'>): FilesystemRow => ({
    name: r.name,
    type: r.type,
    vfs: r.vfs ?? null,
    label: r.label ?? null,
    mbr: r.mbr ?? null,
    size: r.size,
    parent: r.parent ?? null,
    uuid: r.uuid ?? null,
  });
  if (sel.filesystems) {
    for (const f of g.filesystems) {
      if (!sel.extra && (f.type === 'swap' || f.type === 'unknown')) continue;
      rows.push(row({ name: f.device, type: 'filesystem', vfs: f.type, label: f.label ?? '', size: f.size, uuid: f.uuid ?? '' }));
    }
  }
  if (sel.lvs) for (const lv of g.lvs) rows.push(row({ name: lv.device, type: 'lv', size: lv.size, parent: `/dev/${lv.vgName}`, uuid: lv.uuid }));
  if (sel.vgs) for (const vg of g.vgs) rows.push(row({ name: `/dev/${vg.name}`, type: 'vg', size: vg.size, uuid: vg.uuid }));
  if (sel.pvs) for (const pv of g.pvs) if (pv.vgName) rows.push(row({ name: pv.device, type: 'pv', size: pv.size, uuid: pv.uuid }));
  if (sel.partitions) {
    for (const p of g.partitions) {
      const mbr = p.mbrType !== undefined ? p.mbrType.toString(16).padStart(2, '0') : null;
      rows.push(row({ name: p.device, type: 'partition', mbr, size: p.blockSize, parent: p.parent }));
    }
  }
  if (sel.blockDevices) for (const d of g.devices) rows.push(row({ name: d.name, type: 'device', size: d.size }));
  return rows;
}
