import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver } from '../types.js';
import { probeVhd } from './probe.js';

// Detection only until the reader lands (see the format issue).
export const vhdDriver: FormatDriver = {
  name: 'vhd',
  aliases: ['vpc'],
  description: 'Microsoft Virtual Hard Disk (VHD)',
  extensions: ['vhd'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeVhd,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError('vhd images are recognised but cannot be read yet', { file: ctx.file });
  },
};
