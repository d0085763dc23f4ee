import * as z from 'zod';
import { UnsupportedFeatureError } from '../../errors.js';
import { zBool } from '../shared/options.js';
import type { FormatDriver } from '../types.js';
import { HoleProbe } from './holes.js';
import { RawReader } from './reader.js';
import { resizeRaw } from './resize.js';
import { RawWriter } from './writer.js';

export const rawOptions = z
  .object({
    /** Write zero ranges out explicitly (for targets that already hold data). */
    zeroes: zBool.optional().describe('Write zero runs out instead of leaving holes (default off)'),
  })
  .strict();

export const rawDriver: FormatDriver = {
  name: 'raw',
  description: 'raw disk image (the virtual disk byte for byte)',
  extensions: ['raw', 'img', 'bin', 'iso', 'dd'],
  fallback: true,
  // streamRead false: a raw pipe has no size to tell the writer up front; convert spools it (stream/spool.ts).
  capabilities: { read: true, write: true, streamRead: false, streamWrite: true, compression: false, backing: false },
  optionsSchema: rawOptions,
  // Lowest positive score: any other format's magic wins (QEMU raw_probe returns 1).
  probe: () => ({ score: 1 }),
  async open(source, ctx) {
    if (source.size === undefined) {
      throw new UnsupportedFeatureError('raw input from a pipe has no known size; save it to a file first', { file: ctx.file });
    }
    // Files only: a pipe has no holes to find, and a block device never passes the probe's sparseness test.
    const holes = ctx.path && source.seekable ? await HoleProbe.open(ctx.path) : { sparse: false };
    return new RawReader(source, source.size, ctx.path, holes.probe, holes.sparse);
  },
  async create(sink, spec) {
    const opts = rawOptions.parse(spec.options);
    return new RawWriter(sink, spec.virtualSize, opts.zeroes ?? false);
  },
  writeInPlace: (sink, spec) => new RawWriter(sink, spec.size, false, { source: spec.target, isZero: spec.isZero }),
  resize: resizeRaw,
};
