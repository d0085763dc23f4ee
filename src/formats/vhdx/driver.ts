/** Hyper-V VHDX: fixed, dynamic and differencing images read (the log replayed in memory), fixed and dynamic written. */
import type { FormatDriver, ProbeInput, ProbeResult } from '../types.js';
import { bytesEqual } from '../shared/text.js';
import { checkVhdx } from './check.js';
import { readVhdxImage } from './image.js';
import { parseDriverOptions } from '../shared/options.js';
import { recreateVhdxOptions, vhdxOptions, type VhdxOptions } from './options.js';
import { openVhdx } from './reader.js';
import { resizeVhdx } from './resize.js';
import { createVhdxWriter } from './writer.js';

/** File type identifier signature "vhdxfile" at offset 0 (MS-VHDX 2.2.1). */
export function probeVhdx({ head }: ProbeInput): ProbeResult | null {
  return bytesEqual(head, 0, 'vhdxfile') ? { score: 100 } : null;
}

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  description: 'Hyper-V VHDX',
  extensions: ['vhdx', 'avhdx'],
  // Everything that describes the data precedes it, so a pipe can take a new image (see writer.ts).
  capabilities: { read: true, write: true, streamRead: false, streamWrite: true, compression: false, backing: false },
  optionsSchema: vhdxOptions,
  probe: probeVhdx,
  async refineProbe(source, probe) {
    const { image } = await readVhdxImage(source, source.name);
    return { ...probe, subformat: image.subformat };
  },
  open: (source, ctx) => openVhdx(source, ctx),
  create: (sink, spec) => createVhdxWriter(sink, spec, parseDriverOptions<VhdxOptions>(vhdxOptions, 'vhdx', spec.options)),
  recreateOptions: recreateVhdxOptions,
  check: (source, ctx) => checkVhdx(source, ctx),
  resize: resizeVhdx,
};
