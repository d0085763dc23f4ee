/** Allocation map in qemu-img map's JSON shape. */
import { openImage, type OpenOptions } from '../formats/open.js';
import type { Extent, ImageReader } from '../formats/types.js';

export interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

export function toMapEntry(e: Extent): MapEntry {
  const m: MapEntry = {
    start: e.offset,
    length: e.length,
    depth: e.depth,
    present: e.present ?? e.kind !== 'unallocated',
    zero: e.kind !== 'data',
    data: e.kind === 'data',
  };
  if (e.hostOffset !== undefined) m.offset = e.hostOffset;
  return m;
}

/** Notes on what a map cannot show (a raw file's holes), for the caller to print beside it. */
export function mapNotes(r: ImageReader): string[] {
  const note = (r as { mapNote?: () => string | undefined }).mapNote?.();
  return note ? [note] : [];
}

export async function* mapImage(path: string, opts: OpenOptions & { onNotes?: (notes: string[]) => void } = {}): AsyncGenerator<MapEntry> {
  const r = await openImage(path, opts);
  try {
    opts.onNotes?.(mapNotes(r));
    for await (const e of r.extents()) yield toMapEntry(e);
  } finally {
    await r.close();
  }
}
