/**
 * What `info` shows for a VMDK disk: qemu-img's vmdk fields (create-type, cid, parent-cid, extents)
 * plus what the descriptor's disk database says (adapter type, hardware version, geometry) and the
 * parent chain.
 */
import type { FormatInfo, ImageReader } from '../types.js';
import { geometryOf, NO_PARENT_CID, type Descriptor } from './descriptor.js';
import type { ExtentInfo } from './extent.js';

export interface DiskMeta {
  createType: string;
  descriptor?: Descriptor;
  /** Extents in disk order. */
  extents: ExtentInfo[];
  parentHint?: string;
  parentPath?: string;
  warnings: string[];
}

function extentJson(e: ExtentInfo): Record<string, unknown> {
  return {
    ...(e.filename !== undefined ? { filename: e.filename } : {}),
    format: e.format,
    'virtual-size': e.virtualSize,
    ...(e.clusterSize !== undefined ? { 'cluster-size': e.clusterSize } : {}),
    ...(e.compressed ? { compressed: true } : {}),
  };
}

/** The grain size when every extent is sparse with the same grain (qemu-img's cluster_size). */
function commonCluster(extents: ExtentInfo[]): number | undefined {
  const sizes = new Set(extents.map((e) => e.clusterSize));
  const [only] = sizes;
  return sizes.size === 1 ? only : undefined;
}

export function diskInfo(meta: DiskMeta, virtualSize: number, parent: ImageReader | undefined): FormatInfo {
  const d = meta.descriptor;
  const spec: Record<string, unknown> = {
    'create-type': meta.createType,
    cid: d?.cid ?? NO_PARENT_CID,
    'parent-cid': d?.parentCid ?? NO_PARENT_CID,
    extents: meta.extents.map(extentJson),
  };
  const adapter = d?.ddb['ddb.adapterType'];
  if (adapter !== undefined) spec['adapter-type'] = adapter;
  const hw = d?.ddb['ddb.virtualHWVersion'];
  if (hw !== undefined) spec['hw-version'] = hw;
  const geometry = d ? geometryOf(d) : undefined;
  if (geometry) spec.geometry = geometry;
  if (meta.parentHint !== undefined) spec['parent-file-name-hint'] = meta.parentHint;
  if (parent) {
    const p = parent.info();
    const chain = [{ filename: meta.parentPath, ...(p.formatSpecific ? { 'create-type': p.formatSpecific['create-type'], cid: p.formatSpecific.cid } : {}) }];
    const further = p.formatSpecific?.['parent-chain'];
    spec['parent-chain'] = Array.isArray(further) ? [...chain, ...further] : chain;
  }
  const cluster = commonCluster(meta.extents);
  return {
    format: 'vmdk',
    subformat: meta.createType,
    virtualSize,
    ...(cluster !== undefined ? { clusterSize: cluster } : {}),
    ...(meta.parentHint !== undefined ? { backingFile: meta.parentHint, backingFormat: 'vmdk' } : {}),
    ...(meta.parentPath !== undefined ? { backingFileFull: meta.parentPath } : {}),
    formatSpecific: spec,
    ...(meta.warnings.length ? { warnings: [...meta.warnings] } : {}),
  };
}
