/**
 * Where a streamOptimized VMDK read from a pipe may end. A pipe that closes early looks like a
 * stream that ended: without a rule, a cut at any marker boundary converts "successfully" into a
 * disk with the rest as zeros. The rule:
 *
 * - VMware's streams (and ours) put the grain directory at the end (gdOffset = GD_AT_END) and
 *   close with a footer and an end-of-stream marker: both are required.
 * - QEMU's streams put the grain directory and tables before the first grain (inside overHead)
 *   and may end right after the last grain, with no marker. Their tables say where that grain
 *   is: the stream may end without a marker only once it has gone past it.
 *
 * Any other stream must end with the end-of-stream marker.
 */
import type { ByteSource } from '../../stream/source.js';
import { GD_AT_END, SECTOR } from './layout.js';
import type { SparseGeometry } from './sparse.js';

/** Directories larger than this are not read ahead (the stream then needs its end marker). 1M tables: 32 TiB of 64 KiB grains. */
const MAX_READ_AHEAD_GD_ENTRIES = 1024 * 1024;

/**
 * The stream offset of the last grain the header region's tables list (-1 when they list none),
 * or undefined when the header region holds no complete tables to trust. Reads forward only,
 * from `from` (the end of what was read before) to the end of the tables.
 */
export async function lastListedGrain(source: ByteSource, g: SparseGeometry, from: number): Promise<number | undefined> {
  const h = g.header;
  if (h.gdOffset === GD_AT_END || h.gdOffset === 0n) return undefined;
  const overHead = Number(h.overHead) * SECTOR;
  const gdStart = Number(h.gdOffset) * SECTOR;
  const gdEnd = gdStart + g.gdEntries * 4;
  if (g.gdEntries > MAX_READ_AHEAD_GD_ENTRIES || gdStart < from || gdEnd > overHead) return undefined;
  const gd = await source.read(gdStart, gdEnd - gdStart);
  const gdView = new DataView(gd.buffer, gd.byteOffset, gd.byteLength);
  const tables: number[] = [];
  for (let i = 0; i < g.gdEntries; i++) {
    const sector = gdView.getUint32(i * 4, true);
    if (sector !== 0) tables.push(sector * SECTOR);
  }
  tables.sort((a, b) => a - b);
  const gtBytes = g.gtEntries * 4;
  let last = -1;
  let at = gdEnd;
  const gt = new Uint8Array(gtBytes);
  const gtView = new DataView(gt.buffer);
  for (const t of tables) {
    // Tables out of order, overlapping, or outside the header region: not the layout described above.
    if (t < at || t + gtBytes > overHead) return undefined;
    await source.read(t, gtBytes, gt);
    for (let i = 0; i < g.gtEntries; i++) last = Math.max(last, gtView.getUint32(i * 4, true));
    at = t + gtBytes;
  }
  // 0 is "unallocated" and 1 a zeroed grain: neither is in the stream.
  return last > 1 ? last * SECTOR : -1;
}
