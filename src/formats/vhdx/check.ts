/**
 * `check` for VHDX: what qemu's vhdx_co_check looks at (blocks past the end of the file, blocks
 * that overlap each other) plus what its open refuses (blocks over the headers, log, BAT or
 * metadata; undefined states) and what we read that qemu cannot (sector bitmap blocks). A pending
 * log is reported, not counted as a corruption: readers replay it (we in memory, qemu on a
 * read-write open or `check -r all`).
 */
import type { ByteSource } from '../../stream/source.js';
import type { CheckResult, OpenContext } from '../types.js';
import { Bat } from './bat.js';
import { readVhdxImage } from './image.js';
import { ALIGNMENT, MiB, PayloadState, SB_BLOCK_PRESENT } from './layout.js';

const PAYLOAD_STATES = new Set<number>(Object.values(PayloadState));

export async function checkVhdx(source: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  const { image: img, source: replayed } = await readVhdxImage(source, ctx.file);
  const messages: string[] = [];
  let corruptions = 0;
  const fail = (m: string) => {
    messages.push(`ERROR: ${m}`);
    corruptions++;
  };
  if (img.log) messages.push(`the log holds ${img.log.entries} pending entr${img.log.entries === 1 ? 'y' : 'ies'}: a read-write open replays it (qemu-img check -r all); this check reads the image as replayed`);
  for (const w of img.warnings) if (!w.startsWith('the log holds')) messages.push(`Warning: ${w}`);
  const h = img.header;
  const regions: Array<[string, number, number]> = [
    ['the headers', 0, ALIGNMENT],
    ['the log', h.logOffset, h.logOffset + h.logLength],
    ['the BAT', img.bat.fileOffset, img.bat.fileOffset + img.bat.length],
    ['the metadata region', img.metadata.fileOffset, img.metadata.fileOffset + img.metadata.length],
  ];
  const bat = new Bat(replayed, img.bat, img.batEntries, ctx.file);
  // File MiB → first BAT entry there; bounded by the file's size in MiB (allocated blocks cannot outnumber it).
  const owners = new Map<number, number>();
  let allocated = 0;
  let fragmented = 0;
  let lastEnd = -1;
  for (let i = 0; i < img.batEntries; i++) {
    const e = await bat.entry(i);
    const isBitmap = (i + 1) % (img.chunkRatio + 1) === 0;
    const present = isBitmap ? e.state === SB_BLOCK_PRESENT : e.state === PayloadState.fullyPresent || e.state === PayloadState.partiallyPresent;
    if (isBitmap ? e.state !== 0 && e.state !== SB_BLOCK_PRESENT : !PAYLOAD_STATES.has(e.state)) {
      fail(`BAT entry ${i} has the undefined ${isBitmap ? 'sector bitmap' : 'payload'} state ${e.state}`);
      continue;
    }
    if (!present) continue;
    const size = isBitmap ? MiB : img.blockSize;
    const start = e.fileOffset;
    const end = start + size;
    if (!isBitmap) {
      allocated++;
      if (lastEnd >= 0 && start !== lastEnd) fragmented++;
      lastEnd = end;
    }
    if (end > img.fileSize) fail(`BAT entry ${i}: block at ${start} extends past the end of the ${img.fileSize}-byte image`);
    const hit = regions.find(([, a, b]) => start < b && end > a);
    if (hit) fail(`BAT entry ${i}: block at ${start} overlaps ${hit[0]}`);
    for (let m = start / MiB; m < end / MiB; m++) {
      const other = owners.get(m);
      if (other !== undefined) {
        fail(`BAT entries ${other} and ${i} overlap at ${m * MiB}`);
        break;
      }
      if (m * MiB < img.fileSize) owners.set(m, i);
    }
  }
  return {
    filename: ctx.file,
    format: 'vhdx',
    corruptions,
    leaks: 0,
    checkErrors: 0,
    messages,
    imageEndOffset: img.fileSize,
    totalClusters: Math.ceil(img.virtualSize / img.blockSize),
    allocatedClusters: allocated,
    fragmentedClusters: fragmented,
  };
}
