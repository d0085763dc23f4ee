/**
 * Microsoft Virtual Hard Disk (VHD), qemu's "vpc": fixed, dynamic and differencing disks read;
 * fixed and dynamic disks written (dynamic ones also to a pipe).
 */
import type { FormatDriver } from '../types.js';
import { parseDriverOptions } from '../shared/options.js';
import { recreateVhdOptions, vhdOptions, type VhdOptions } from './options.js';
import { probeVhd } from './probe.js';
import { openVhd } from './reader.js';
import { resizeVhd } from './resize.js';
import { createVhdWriter } from './writer.js';

export const vhdDriver: FormatDriver = {
  name: 'vhd',
  qemuName: 'vpc',
  description: 'Microsoft Virtual Hard Disk (VHD)',
  extensions: ['vhd'],
  // backing: differencing disks are read (their parents followed) but not created, so `create -b` is refused.
  capabilities: { read: true, write: true, streamRead: false, streamWrite: true, compression: false, backing: false },
  optionsSchema: vhdOptions,
  probe: probeVhd,
  open: (source, ctx) => openVhd(source, ctx),
  create: (sink, spec) => createVhdWriter(sink, spec, parseDriverOptions<VhdOptions>(vhdOptions, 'vhd', spec.options)),
  recreateOptions: recreateVhdOptions,
  resize: resizeVhd,
};
