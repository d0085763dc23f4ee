/**
 * Creating a VMDK: options → subformat → the files it is made of (docs/FORMATS.md §3.1, §3.7) and
 * the descriptor that names them, in the line order and with the values qemu-img writes.
 */
import { randomInt } from 'node:crypto';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CorruptImageError, UsageError } from '../../errors.js';
import { FileSource } from '../../stream/source.js';
import type { ByteSink } from '../../stream/sink.js';
import { ceilDiv } from '../shared/bounds.js';
import { parseDriverOptions } from '../shared/options.js';
import type { CreateSpec, ImageWriter } from '../types.js';
import { NO_PARENT_CID, qemuGeometry, serializeDescriptor, type Descriptor, type DescriptorExtent } from './descriptor.js';
import { DEFAULT_GRAIN_SECTORS, EMBEDDED_DESCRIPTOR_SECTORS, SECTOR, SPLIT_EXTENT_BYTES } from './layout.js';
import { vmdkOptions, type Subformat, type VmdkOptions } from './options.js';
import { ExtentSetWriter, FlatExtentWriter, type PlannedExtent } from './writer-extents.js';
import { planSparseExtent, SparseExtentWriter } from './writer-sparse.js';
import { openVmdk } from './open-disk.js';
import { StreamOptimizedWriter } from './writer-stream-optimized.js';
import { OverlayWriter } from '../shared/overlay-writer.js';

/** What qemu-img writes when not told otherwise. */
const DEFAULT_HW_VERSION = '4';
const COMPAT6_HW_VERSION = '6';
const DEFAULT_TOOLS_VERSION = '2147483647';

export interface Naming {
  /** Folder and base name of the output, split as QEMU's filename_decompose does. */
  dir: string;
  prefix: string;
  postfix: string;
}

export function namingFor(path: string): Naming {
  const ext = extname(path);
  return { dir: dirname(path), prefix: basename(path, ext), postfix: ext };
}

/** `disk.vmdk` → `disk-flat.vmdk`, `disk-s001.vmdk`, `disk-f002.vmdk` (QEMU's names). */
export function sideFileName(n: Naming, kind: 'flat' | 's' | 'f', index = 0): string {
  const tag = kind === 'flat' ? 'flat' : `${kind}${String(index).padStart(3, '0')}`;
  return `${n.prefix}-${tag}${n.postfix}`;
}

/** The parent of a delta link: the name written as parentFileNameHint, and its CID. */
export interface ParentLink {
  hint: string;
  cid: number;
}

/**
 * Reads the CID of the parent a delta is made against (qemu-img: "Failed to read parent CID").
 * The name comes from the user, not from an image, so it is not confined; it is resolved against
 * the new image's folder, as readers will resolve it.
 */
async function parentLink(name: string, outputPath: string | undefined): Promise<ParentLink> {
  const path = resolve(outputPath ? dirname(outputPath) : '.', name);
  const source = await FileSource.open(path, name);
  const ctx = { file: name, path, allowOutside: true, openBacking: false, depth: 0, chain: [], openImage: () => Promise.reject(new Error('unused')) };
  const reader = await openVmdk(source, ctx).catch(async (e: unknown) => {
    await source.close();
    throw e instanceof CorruptImageError ? new UsageError(`backing file ${name} must be a VMDK image: ${e.message}`, { field: 'backing_file' }) : e;
  });
  try {
    const cid = reader.info().formatSpecific?.cid;
    if (typeof cid !== 'number') throw new UsageError(`backing file ${name} has no CID`, { field: 'backing_file' });
    return { hint: name, cid };
  } finally {
    await reader.close();
  }
}

export function buildDescriptor(opts: VmdkOptions, virtualSize: number, createType: string, extents: Omit<DescriptorExtent, 'line'>[], parent?: ParentLink): Descriptor {
  if (opts.compat6 && opts.hwversion !== undefined) throw new UsageError('compat6 cannot be enabled with hwversion set', { field: 'compat6' });
  const adapter = opts.adapter_type ?? 'ide';
  const g = qemuGeometry(virtualSize, adapter);
  return {
    version: 1,
    // Random like QEMU's; ffffffff would read as "no parent" in a child's parentCID.
    cid: randomInt(0, NO_PARENT_CID),
    parentCid: parent?.cid ?? NO_PARENT_CID,
    createType,
    ...(parent ? { parentFileNameHint: parent.hint } : {}),
    extra: {},
    extents: extents.map((e) => ({ ...e, line: 0 })),
    ddb: {
      'ddb.virtualHWVersion': opts.compat6 ? COMPAT6_HW_VERSION : (opts.hwversion ?? DEFAULT_HW_VERSION),
      'ddb.geometry.cylinders': String(g.cylinders),
      'ddb.geometry.heads': String(g.heads),
      'ddb.geometry.sectors': String(g.sectors),
      'ddb.adapterType': adapter,
      'ddb.toolsVersion': opts.toolsversion ?? DEFAULT_TOOLS_VERSION,
    },
  };
}

function chooseSubformat(opts: VmdkOptions, spec: CreateSpec, toPipe: boolean): Subformat {
  if (spec.compress && opts.subformat !== undefined && opts.subformat !== 'streamOptimized') {
    throw new UsageError(`compression (-c) applies to subformat=streamOptimized only, not ${opts.subformat}`, { field: 'subformat' });
  }
  // -c alone asks for the one compressed VMDK there is; a pipe takes the one VMDK written in one pass.
  return opts.subformat ?? (spec.compress || toPipe ? 'streamOptimized' : 'monolithicSparse');
}

/** The name the descriptor gives the output itself (for monolithic files). */
function selfName(spec: CreateSpec): string {
  const name = spec.path ?? spec.file;
  return name && name !== '-' ? basename(name) : 'disk.vmdk';
}

async function writeDescriptorFile(sink: ByteSink, d: Descriptor): Promise<void> {
  const text = new TextEncoder().encode(serializeDescriptor(d));
  await sink.write(0, text);
  // The descriptor file is its text and nothing more (qemu-img truncates it so).
  await sink.setLength(text.length);
}

export async function createVmdk(sink: ByteSink, spec: CreateSpec): Promise<ImageWriter> {
  const writer = await createVmdkWriter(sink, spec);
  // A delta link: unwritten grains show the parent, so zeros must be stored.
  return parseDriverOptions(vmdkOptions, 'vmdk', spec.options).backing_file !== undefined ? new OverlayWriter(writer) : writer;
}

async function createVmdkWriter(sink: ByteSink, spec: CreateSpec): Promise<ImageWriter> {
  const opts = parseDriverOptions(vmdkOptions, 'vmdk', spec.options);
  const subformat = chooseSubformat(opts, spec, !sink.seekable);
  if (!Number.isSafeInteger(spec.virtualSize) || spec.virtualSize < 0) throw new UsageError(`invalid virtual size ${spec.virtualSize}`);
  // Sizes are whole sectors (QEMU rounds up the same way).
  const capacity = ceilDiv(spec.virtualSize, SECTOR);
  const flat = subformat === 'monolithicFlat' || subformat === 'twoGbMaxExtentFlat';
  if (opts.zeroed_grain && (flat || subformat === 'streamOptimized')) {
    throw new UsageError(`zeroed_grain applies to the sparse subformats, not ${subformat}`, { field: 'zeroed_grain' });
  }
  if (opts.backing_file !== undefined && flat) throw new UsageError('a flat image cannot have a backing file', { field: 'backing_file' });
  if (opts.backing_fmt !== undefined && opts.backing_file === undefined) throw new UsageError('backing_fmt given without backing_file', { field: 'backing_fmt' });
  const parent = opts.backing_file !== undefined ? await parentLink(opts.backing_file, spec.path) : undefined;
  if (!sink.seekable && subformat !== 'streamOptimized') {
    throw new UsageError(`subformat ${subformat} cannot be written to a pipe in one pass; use subformat=streamOptimized`, { field: 'subformat' });
  }
  const grainBytes = DEFAULT_GRAIN_SECTORS * SECTOR;

  if (subformat === 'streamOptimized') {
    const d = buildDescriptor(opts, spec.virtualSize, subformat, [{ access: 'RW', sectors: capacity, type: 'SPARSE', fileName: selfName(spec) }], parent);
    return StreamOptimizedWriter.create(sink, { capacitySectors: capacity, descriptor: serializeDescriptor(d), parallelism: spec.parallelism, overParent: parent !== undefined });
  }

  if (subformat === 'monolithicSparse') {
    const d = buildDescriptor(opts, spec.virtualSize, subformat, [{ access: 'RW', sectors: capacity, type: 'SPARSE', fileName: selfName(spec) }], parent);
    const plan = planSparseExtent(capacity, EMBEDDED_DESCRIPTOR_SECTORS);
    const extent: PlannedExtent = {
      start: 0,
      length: capacity * SECTOR,
      open: () => SparseExtentWriter.create(sink, plan, serializeDescriptor(d), opts.zeroed_grain ?? false, parent !== undefined),
    };
    return new ExtentSetWriter(grainBytes, [extent], async () => {});
  }

  // The rest is a descriptor file plus extent files named after it.
  if (!spec.path || !spec.openSideFile) {
    throw new UsageError(`subformat ${subformat} writes several files and needs an output path`, { field: 'subformat' });
  }
  const openSide = spec.openSideFile;
  const naming = namingFor(spec.path);
  const split = subformat === 'twoGbMaxExtentFlat' || subformat === 'twoGbMaxExtentSparse';
  const extentBytes = split ? SPLIT_EXTENT_BYTES : Math.max(capacity * SECTOR, 1);
  const extents: PlannedExtent[] = [];
  const lines: Omit<DescriptorExtent, 'line'>[] = [];
  for (let start = 0, i = 1; start < capacity * SECTOR; start += extentBytes, i++) {
    const length = Math.min(extentBytes, capacity * SECTOR - start);
    const name = split ? sideFileName(naming, flat ? 'f' : 's', i) : sideFileName(naming, 'flat');
    const path = join(naming.dir, name);
    lines.push(flat ? { access: 'RW', sectors: length / SECTOR, type: 'FLAT', fileName: name, offset: 0 } : { access: 'RW', sectors: length / SECTOR, type: 'SPARSE', fileName: name });
    extents.push({
      start,
      length,
      open: async () => {
        const side = await openSide(path);
        if (flat) return new FlatExtentWriter(side, length);
        // Split sparse extents reserve a descriptor area and leave it empty, as qemu-img does.
        return SparseExtentWriter.create(side, planSparseExtent(length / SECTOR, EMBEDDED_DESCRIPTOR_SECTORS), undefined, opts.zeroed_grain ?? false, parent !== undefined);
      },
    });
  }
  const d = buildDescriptor(opts, spec.virtualSize, subformat, lines, parent);
  // Checked now, so that a bad option fails before any data is copied.
  serializeDescriptor(d);
  return new ExtentSetWriter(grainBytes, extents, () => writeDescriptorFile(sink, d));
}
