/**
 * The qcow2 driver (QEMU copy-on-write, versions 2 and 3): detection, reading with backing chains,
 * writing to files and pipes, and `check`. See docs/FORMATS.md §2 for the layout.
 */
import type { FormatDriver } from '../types.js';
import { checkQcow2 } from './check.js';
import { qcow2OptionsSchema, recreateQcow2Options, resolveConfig } from './options.js';
import { probeQcow2 } from './probe.js';
import { openQcow2 } from './reader.js';
import { resizeQcow2 } from './resize.js';
import { Qcow2StreamWriter } from './pipe-writer.js';
import { Qcow2Writer } from './writer.js';

export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  description: 'QEMU copy-on-write v2/v3',
  extensions: ['qcow2'],
  capabilities: { read: true, write: true, streamRead: false, streamWrite: true, compression: true, backing: true },
  optionsSchema: qcow2OptionsSchema,
  probe: probeQcow2,
  open: openQcow2,
  async create(sink, spec) {
    const cfg = resolveConfig(spec);
    // A pipe cannot be rewound: plan everything from the allocation map and write in one pass.
    if (!sink.seekable) return Qcow2StreamWriter.create(sink, cfg, spec);
    return new Qcow2Writer(sink, cfg, spec.file);
  },
  recreateOptions: recreateQcow2Options,
  check: checkQcow2,
  resize: resizeQcow2,
};
