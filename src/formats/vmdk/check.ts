/**
 * `check` for VMDK: every sparse extent's grain tables walked for entries past the end of the file
 * (what qemu-img check tests, in its words), damaged primary directories, tables that disagree with
 * their redundant copy, and stream grain markers that do not match their table entry.
 */
import { UnsupportedFeatureError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { noteCheckMessage } from '../shared/check-log.js';
import type { CheckResult, OpenContext } from '../types.js';
import { GrainTableExtent } from './grain-table.js';
import { openVmdk } from './open-disk.js';
import { VmdkReader } from './reader.js';

export async function checkVmdk(source: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  if (!source.seekable) throw new UnsupportedFeatureError('a VMDK read from a pipe cannot be checked; check the file', { file: ctx.file });
  // The parent is a separate image with its own check.
  const reader = await openVmdk(source, { ...ctx, openBacking: false });
  // Cluster counts are left out, as qemu-img leaves them out for VMDK: its JSON has none.
  const result: CheckResult = { filename: ctx.file, format: 'vmdk', corruptions: 0, leaks: 0, checkErrors: 0, messages: [] };
  try {
    if (!(reader instanceof VmdkReader)) return result;
    for (const part of reader.layout) {
      if (!(part.extent instanceof GrainTableExtent)) continue;
      const r = await part.extent.check(part.start);
      result.corruptions += r.corruptions;
      result.checkErrors += r.checkErrors;
      for (const line of r.messages) noteCheckMessage(result.messages, line);
    }
    return result;
  } finally {
    // The caller owns `source`; close only what the reader opened besides it.
    if (reader instanceof VmdkReader) await reader.closeExtents();
  }
}
