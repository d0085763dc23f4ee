/**
 * Opening a VMDK disk by what its first bytes are (docs/FORMATS.md §3.1):
 * - "KDMV": a hosted sparse extent that is the whole disk (monolithicSparse, streamOptimized),
 *   its descriptor embedded; from a pipe, only a stream-optimized one can be read (stream-optimized-reader.ts);
 * - "COWD": an ESX sparse delta opened on its own;
 * - text: a descriptor naming extent files (flat, split, vmfs, vmfsSparse, mixes).
 * Extent and parent names are untrusted: they are resolved against the descriptor's folder and
 * refused outside it unless the caller allows (shared/paths.ts).
 */
import { dirname, isAbsolute, join } from 'node:path';
import { CorruptImageError, LimitExceededError, UnsupportedFeatureError } from '../../errors.js';
import { retryingSource } from '../../stream/retry.js';
import { FileSource, type ByteSource } from '../../stream/source.js';
import { openedInside, resolveConfined } from '../shared/paths.js';
import { textUntilNul, u32leAt } from '../shared/text.js';
import type { ImageReader, OpenContext } from '../types.js';
import { openCowdExtent } from './cowd.js';
import { NO_PARENT_CID, parseDescriptor, type Descriptor, type DescriptorExtent } from './descriptor.js';
import { FlatExtent, ZeroExtent, type ExtentReader } from './extent.js';
import { COWD_MAGIC_LE, MAX_DESCRIPTOR_BYTES, SECTOR, SPARSE_MAGIC_LE } from './layout.js';
import { looksLikeDescriptor } from './probe.js';
import { CidCheckedParent, VmdkReader, type DiskPart } from './reader.js';
import { openSparseExtent, readSparseHeader } from './sparse.js';
import { openStreamReader } from './stream-optimized-reader.js';

/**
 * More extents than this are refused: each is an open file. A twoGbMaxExtentSparse disk of 8 TiB
 * (VMware's largest hosted disk) has 4096.
 */
export const MAX_EXTENTS = 8192;

/** createTypes that name raw devices or partitions, which a file-based reader cannot open. */
const DEVICE_CREATE_TYPES = new Set(['fullDevice', 'partitionedDevice', 'vmfsRaw', 'vmfsRawDeviceMap', 'vmfsRDM', 'vmfsRDMP', 'vmfsPassthroughRawDeviceMap']);

export async function openVmdk(source: ByteSource, ctx: OpenContext): Promise<ImageReader> {
  const head = await source.readUpTo(0, SECTOR);
  const magic = u32leAt(head, 0);
  if (magic === SPARSE_MAGIC_LE) {
    if (!source.seekable) return openStreamReader(source, ctx);
    return openSparseDisk(source, ctx);
  }
  if (magic === COWD_MAGIC_LE) {
    const { extent } = await openCowdExtent(source, { file: ctx.file, format: '' });
    return new VmdkReader(source, [{ start: 0, extent }], { createType: 'vmfsSparse', warnings: [] }, [], ctx.path ? [ctx.path] : []);
  }
  if (!source.seekable || source.size === undefined) {
    throw new UnsupportedFeatureError('a VMDK descriptor read from a pipe cannot name its extent files; open it as a file', { file: ctx.file });
  }
  if (source.size > MAX_DESCRIPTOR_BYTES) {
    throw new LimitExceededError(`not a VMDK image: no KDMV/COWD magic, and at ${source.size} bytes too large for a descriptor file (at most ${MAX_DESCRIPTOR_BYTES})`, { file: ctx.file, field: 'magic', offset: 0 });
  }
  const bytes = await source.read(0, source.size);
  if (!looksLikeDescriptor(bytes)) throw new CorruptImageError('not a VMDK image: no KDMV/COWD magic and no descriptor', { file: ctx.file, field: 'magic', offset: 0 });
  const descriptor = parseDescriptor(textUntilNul(bytes), { file: ctx.file, base: 0, embedded: false });
  return openDescriptorDisk(source, descriptor, ctx);
}

/** A KDMV file that is the whole disk, or (capacity 0 with a descriptor) a descriptor in disguise. */
async function openSparseDisk(source: ByteSource, ctx: OpenContext): Promise<ImageReader> {
  const header = await readSparseHeader(source, ctx.file);
  if (header.capacity === 0n && header.descriptorOffset > 0) {
    // QEMU: an empty sparse header whose descriptor lists the extents.
    const at = header.descriptorOffset * SECTOR;
    const len = Math.min(MAX_DESCRIPTOR_BYTES, Math.max(0, (source.size ?? 0) - at));
    const text = textUntilNul(await source.read(at, len));
    return openDescriptorDisk(source, parseDescriptor(text, { file: ctx.file, base: at, embedded: false }), ctx);
  }
  const opened = await openSparseExtent(source, { file: ctx.file, format: '', readDescriptor: true });
  const descriptor =
    opened.descriptorText !== undefined && opened.descriptorText.trim() !== ''
      ? parseDescriptor(opened.descriptorText, { file: ctx.file, base: opened.descriptorOffset, embedded: true })
      : undefined;
  const warnings = descriptor ? [] : ['no embedded descriptor: CID and disk database unknown'];
  // QEMU names the type by the header alone: compressed grains make it streamOptimized.
  const createType = opened.geometry.compressed ? 'streamOptimized' : (descriptor?.createType ?? 'monolithicSparse');
  const parts: DiskPart[] = [{ start: 0, extent: opened.extent }];
  return finishDisk(source, parts, descriptor, createType, warnings, { sources: [], paths: [] }, ctx);
}

/** Extent files opened so far: the sources to close, and their real paths (for files()). */
interface Opened {
  sources: ByteSource[];
  paths: string[];
}

async function openExtent(e: DescriptorExtent, ctx: OpenContext, opened: Opened): Promise<{ extent: ExtentReader; warnings: string[] }> {
  const where = { file: ctx.file, field: `descriptor line ${e.line}` };
  const length = e.sectors * SECTOR;
  if (e.access === 'NOACCESS') throw new UnsupportedFeatureError(`extent on line ${e.line} is NOACCESS and cannot be read`, where);
  if (e.type === 'ZERO') return { extent: new ZeroExtent(length), warnings: [] };
  if (e.type === 'VMFSRDM' || e.type === 'VMFSRAW' || e.type === 'SESPARSE') {
    throw new UnsupportedFeatureError(`${e.type} extents (line ${e.line}) are not supported`, where);
  }
  const confine = { referrer: ctx.path!, what: 'extent', allowOutside: ctx.allowOutside };
  const path = resolveConfined(e.fileName!, confine);
  // Named as qemu-img names it: beside the descriptor as the user named that.
  const name = isAbsolute(e.fileName!) ? e.fileName! : join(dirname(ctx.file), e.fileName!);
  const src = retryingSource(await FileSource.open(path, name, openedInside(path, confine)));
  opened.sources.push(src);
  opened.paths.push(path);
  if (e.type === 'FLAT' || e.type === 'VMFS') return { extent: new FlatExtent(src, length, e.offset ?? 0, e.type), warnings: [] };
  // SPARSE and VMFSSPARSE: either kind of sparse file (QEMU looks at the magic, not the type).
  const magic = u32leAt(await src.readUpTo(0, 4), 0);
  let extent: ExtentReader;
  if (magic === SPARSE_MAGIC_LE) extent = (await openSparseExtent(src, { file: name, format: e.type, readDescriptor: false })).extent;
  else if (magic === COWD_MAGIC_LE) extent = (await openCowdExtent(src, { file: name, format: e.type })).extent;
  else throw new CorruptImageError(`extent file of line ${e.line} is not a sparse VMDK extent`, { file: name, field: 'magic', offset: 0 });
  // QEMU sizes a sparse extent by its header; say so when the descriptor disagrees.
  const warnings = extent.length !== length ? [`extent ${e.fileName} holds ${extent.length} bytes, the descriptor says ${length}; the header wins`] : [];
  return { extent, warnings };
}

async function openDescriptorDisk(source: ByteSource, d: Descriptor, ctx: OpenContext): Promise<ImageReader> {
  const createType = d.createType!;
  if (DEVICE_CREATE_TYPES.has(createType)) {
    throw new UnsupportedFeatureError(`createType "${createType}" names a raw device, which cannot be read from an image file`, { file: ctx.file, field: 'createType' });
  }
  if (d.extents.length > MAX_EXTENTS) {
    throw new LimitExceededError(`the descriptor lists ${d.extents.length} extents (limit ${MAX_EXTENTS})`, { file: ctx.file, field: 'extent description' });
  }
  if (!ctx.path) throw new UnsupportedFeatureError('a VMDK descriptor without a file path cannot locate its extents', { file: ctx.file });
  const opened: Opened = { sources: [], paths: [] };
  const parts: DiskPart[] = [];
  const warnings: string[] = [];
  try {
    let start = 0;
    for (const e of d.extents) {
      const r = await openExtent(e, ctx, opened);
      parts.push({ start, extent: r.extent });
      warnings.push(...r.warnings);
      start += r.extent.length;
      if (!Number.isSafeInteger(start)) throw new LimitExceededError('the extents add up to more than 2^53 bytes', { file: ctx.file, field: `descriptor line ${e.line}` });
    }
    return await finishDisk(source, parts, d, createType, warnings, opened, ctx);
  } catch (e) {
    await Promise.all(opened.sources.map((s) => s.close()));
    throw e;
  }
}

/** Opens the parent of a delta link (parentFileNameHint), confined like every other path. */
async function finishDisk(
  source: ByteSource,
  parts: DiskPart[],
  d: Descriptor | undefined,
  createType: string,
  warnings: string[],
  opened: Opened,
  ctx: OpenContext,
): Promise<ImageReader> {
  const paths = [...(ctx.path ? [ctx.path] : []), ...opened.paths];
  const hint = d?.parentFileNameHint;
  let parent: ImageReader | undefined;
  let parentPath: string | undefined;
  if (hint !== undefined && ctx.openBacking) {
    if (!ctx.path) throw new UnsupportedFeatureError('a delta VMDK read from a pipe cannot locate its parent', { file: ctx.file, field: 'parentFileNameHint' });
    parentPath = resolveConfined(hint, { referrer: ctx.path, what: 'parent', allowOutside: ctx.allowOutside });
    parent = new CidCheckedParent(await ctx.openImage(parentPath, 'vmdk', ctx), d!.parentCid, ctx.file);
  } else if (hint !== undefined && d!.parentCid !== NO_PARENT_CID) {
    warnings.push('parent not opened: unallocated grains read as zeros');
  }
  return new VmdkReader(source, parts, { createType, descriptor: d, parentHint: hint, parentPath, warnings }, opened.sources, paths, parent);
}
