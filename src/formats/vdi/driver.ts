import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver } from '../types.js';
import { probeVdi } from './probe.js';

// Detection only until the reader lands (see the format issue).
export const vdiDriver: FormatDriver = {
  name: 'vdi',

  description: 'VirtualBox disk image',
  extensions: ['vdi'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeVdi,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError('vdi images are recognised but cannot be read yet', { file: ctx.file });
  },
};
