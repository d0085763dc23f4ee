/**
 * The VMDK format driver (docs/FORMATS.md §3): one object literal naming what the format can do and
 * where each job is done.
 */
import type { FormatDriver } from '../types.js';
import { checkVmdk } from './check.js';
import { createVmdk } from './create.js';
import { openVmdk } from './open-disk.js';
import { recreateVmdkOptions, vmdkOptions } from './options.js';
import { probeVmdk } from './probe.js';

export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  description: 'VMware virtual disk (sparse, streamOptimized, flat, split, ESX delta)',
  extensions: ['vmdk'],
  // streamRead: streamOptimized from a pipe; streamWrite: streamOptimized to a pipe.
  capabilities: { read: true, write: true, streamRead: true, streamWrite: true, compression: true, backing: true },
  optionsSchema: vmdkOptions,
  probe: probeVmdk,
  // Only a streamOptimized VMDK is laid out in one forward pass; a sparse one is spooled.
  streamReadable: (p) => p.subformat === 'streamOptimized',
  open: openVmdk,
  create: createVmdk,
  recreateOptions: recreateVmdkOptions,
  check: checkVmdk,
};
