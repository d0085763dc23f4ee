/**
 * VHDX is detected (so that it is never mistaken for raw and copied byte for byte), but not yet
 * read or written: opening it says so plainly.
 */
import { UnsupportedFeatureError } from '../../errors.js';
import type { FormatDriver, ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual } from '../shared/text.js';

/** File type identifier signature "vhdxfile" at offset 0 (MS-VHDX 2.2.1). */
export function probeVhdx({ head }: ProbeInput): ProbeResult | null {
  return bytesEqual(head, 0, 'vhdxfile') ? { score: 100 } : null;
}

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  description: 'Hyper-V VHDX (detected only)',
  extensions: ['vhdx'],
  capabilities: { read: false, write: false, streamRead: false, streamWrite: false, compression: false, backing: false },
  probe: probeVhdx,
  async open(_source, ctx) {
    throw new UnsupportedFeatureError('VHDX images are recognised but cannot be read yet', { file: ctx.file, field: 'signature', offset: 0 });
  },
};
