/** Hyper-V VHDX: fixed, dynamic and differencing images read (the log replayed in memory), fixed and dynamic written. */
import type { FormatDriver, ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual } from '../shared/text.js';
import { readVhdxImage } from './image.js';
import { openVhdx } from './reader.js';

/** File type identifier signature "vhdxfile" at offset 0 (MS-VHDX 2.2.1). */
export function probeVhdx({ head }: ProbeInput): ProbeResult | null {
  return bytesEqual(head, 0, 'vhdxfile') ? { score: 100 } : null;
}

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  description: 'Hyper-V VHDX',
  extensions: ['vhdx', 'avhdx'],
  capabilities: { read: true, write: false, streamRead: false, streamWrite: false, compression: false, backing: true },
  probe: probeVhdx,
  async refineProbe(source, probe) {
    const { image } = await readVhdxImage(source, source.name);
    return { ...probe, subformat: image.subformat };
  },
  open: (source, ctx) => openVhdx(source, ctx),
};
