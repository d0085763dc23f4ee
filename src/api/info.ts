/**
 * Image information in qemu-img info's JSON shape, so scripts written for qemu-img keep working.
 */
import { stat } from 'node:fs/promises';
import { openImage, MAX_CHAIN_DEPTH, type OpenOptions } from '../formats/open.js';
import { CorruptImageError, LimitExceededError } from '../errors.js';
import { detectSource } from '../formats/detect.js';
import { qemuName } from '../formats/registry.js';
import { looksLikeOva } from '../ova/ova.js';
import { FileSource } from '../stream/source.js';
import type { FormatInfo } from '../formats/types.js';

export interface QemuStyleInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'cluster-size'?: number;
  'dirty-flag': boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  snapshots?: Array<Record<string, unknown>>;
  'format-specific'?: { type: string; data: Record<string, unknown> };
  /** guestkit extension: subformat named by the header (monolithicSparse, dynamic, …). */
  subformat?: string;
  warnings?: string[];
}

export function toQemuInfo(filename: string, info: FormatInfo, actualSize?: number): QemuStyleInfo {
  const out: QemuStyleInfo = { filename, format: qemuName(info.format), 'virtual-size': info.virtualSize, 'dirty-flag': info.dirty ?? false };
  if (actualSize !== undefined) out['actual-size'] = actualSize;
  if (info.clusterSize !== undefined) out['cluster-size'] = info.clusterSize;
  if (info.backingFile !== undefined) out['backing-filename'] = info.backingFile;
  if (info.backingFileFull !== undefined) out['full-backing-filename'] = info.backingFileFull;
  if (info.backingFormat !== undefined) out['backing-filename-format'] = info.backingFormat;
  if (info.snapshots?.length) {
    out.snapshots = info.snapshots.map((s) => ({
      id: s.id,
      name: s.name,
      'vm-state-size': s.vmStateSize,
      'date-sec': s.dateSec,
      'date-nsec': s.dateNsec,
      'vm-clock-sec': Math.floor(s.vmClockNsec / 1e9),
      'vm-clock-nsec': s.vmClockNsec % 1e9,
      ...(s.icount !== undefined ? { icount: s.icount } : {}),
    }));
  }
  if (info.formatSpecific) out['format-specific'] = { type: out.format, data: info.formatSpecific };
  if (info.subformat) out.subformat = info.subformat;
  if (info.warnings?.length) out.warnings = info.warnings;
  return out;
}

/** Disk space the file occupies (allocated blocks), as qemu-img's actual-size. */
export async function actualSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.blocks * 512;
  } catch {
    return undefined;
  }
}

export async function imageInfo(path: string, opts: OpenOptions = {}): Promise<QemuStyleInfo> {
  const reader = await openImage(path, opts);
  try {
    return toQemuInfo(path, reader.info(), await actualSize(path));
  } finally {
    await reader.close();
  }
}

/**
 * Info of an image and of every image below it (qemu-img info --backing-chain), top first.
 * Each layer is opened on its own with backing disabled, so a broken layer is named as such;
 * depth and loops are bounded by the same limits as reading.
 */
export async function imageInfoChain(path: string, opts: OpenOptions = {}): Promise<QemuStyleInfo[]> {
  const chain: QemuStyleInfo[] = [];
  const seen = new Set<string>();
  let current: { path: string; format?: string } | undefined = { path, format: opts.format };
  while (current) {
    if (seen.has(current.path)) throw new CorruptImageError(`backing chain loops back to ${current.path}`, { file: path, field: 'backing file' });
    if (seen.size >= MAX_CHAIN_DEPTH) throw new LimitExceededError(`backing chain is deeper than ${MAX_CHAIN_DEPTH} images`, { file: path });
    seen.add(current.path);
    const reader = await openImage(current.path, { ...opts, format: current.format, openBacking: false });
    let info: FormatInfo;
    try {
      info = reader.info();
    } finally {
      await reader.close();
    }
    chain.push(toQemuInfo(current.path, info, await actualSize(current.path)));
    current = info.backingFileFull ? { path: info.backingFileFull, format: info.backingFormat } : undefined;
  }
  return chain;
}

export interface DetectResult {
  filename: string;
  format: string;
  subformat?: string;
}

export async function detectFormat(path: string): Promise<DetectResult> {
  const src = await FileSource.open(path);
  try {
    // A tar of a VM's files is no disk format of the registry, but it is what the file is (src/ova/).
    if (looksLikeOva(await src.readUpTo(0, 4096))) return { filename: path, format: 'ova' };
    const d = await detectSource(src);
    return { filename: path, format: d.format, ...(d.subformat ? { subformat: d.subformat } : {}) };
  } finally {
    await src.close();
  }
}
