/** VirtualBox Disk Image (VDI): static and dynamic images read, written and checked. */
import type { FormatDriver } from '../types.js';
import { parseDriverOptions } from '../shared/options.js';
import { checkVdi } from './check.js';
import { recreateVdiOptions, vdiOptions, type VdiOptions } from './options.js';
import { probeVdi } from './probe.js';
import { openVdi } from './reader.js';
import { resizeVdi } from './resize.js';
import { createVdiWriter } from './writer.js';

export const vdiDriver: FormatDriver = {
  name: 'vdi',
  description: 'VirtualBox disk image',
  extensions: ['vdi'],
  capabilities: { read: true, write: true, streamRead: false, streamWrite: true, compression: false, backing: false },
  optionsSchema: vdiOptions,
  probe: probeVdi,
  open: (source, ctx) => openVdi(source, ctx),
  create: (sink, spec) => createVdiWriter(sink, spec, parseDriverOptions<VdiOptions>(vdiOptions, 'vdi', spec.options)),
  recreateOptions: recreateVdiOptions,
  check: (source, ctx) => checkVdi(source, ctx),
  resize: resizeVdi,
};
