import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver } from '../types.js';
import { probeQcow2 } from './probe.js';

// Detection only until the reader lands (see the format issue).
export const qcow2Driver: FormatDriver = {
  name: 'qcow2',

  description: 'QEMU copy-on-write v2/v3',
  extensions: ['qcow2'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeQcow2,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError('qcow2 images are recognised but cannot be read yet', { file: ctx.file });
  },
};
