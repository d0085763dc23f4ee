import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver } from '../types.js';
import { probeVmdk } from './probe.js';

// Detection only until the reader lands (see the format issue).
export const vmdkDriver: FormatDriver = {
  name: 'vmdk',

  description: 'VMware virtual disk',
  extensions: ['vmdk'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeVmdk,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError('vmdk images are recognised but cannot be read yet', { file: ctx.file });
  },
};
