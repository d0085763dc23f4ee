/**
 * The legacy qcow (version 1) format: recognised so that it is not mistaken for raw, and refused
 * with a clear message. It is out of scope (obsolete since 2008, insecure encryption); convert it
 * with an older toolchain first.
 */
import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver } from '../types.js';
import { probeQcow1 } from '../qcow2/probe.js';

export const qcowDriver: FormatDriver = {
  name: 'qcow',
  description: 'legacy QEMU copy-on-write v1 (recognised, not supported)',
  extensions: ['qcow'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeQcow1,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError(
      'legacy qcow version 1 images are not supported; convert them to qcow2 with a tool that still reads them',
      { file: ctx.file, field: 'version', offset: 4 },
    );
  },
};
