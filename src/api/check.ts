/** Consistency check through the format driver, in qemu-img check's JSON shape. */
import { byName, qemuName } from '../formats/registry.js';
import { detectSource } from '../formats/detect.js';
import { notThisFormat, rootContext, type OpenOptions } from '../formats/open.js';
import type { CheckResult } from '../formats/types.js';
import { FileSource } from '../stream/source.js';

/** Checks an image; null when its format has no metadata to check (qemu-img exits 63 then). */
export async function checkImage(path: string, opts: OpenOptions = {}): Promise<CheckResult | null> {
  const source = await FileSource.open(path);
  try {
    const driver = opts.format ? byName(opts.format) : (await detectSource(source)).driver;
    if (!driver.check) return null;
    // A named format's checker would report another format's bytes as corruption.
    if (opts.format) {
      const other = await notThisFormat(source, driver, path);
      if (other) throw other;
    }
    return await driver.check(source, rootContext(path, path, { ...opts, openBacking: false }));
  } finally {
    await source.close();
  }
}

/** qemu-img check's JSON, which leaves out zero corruption/leak counts. */
export function checkJson(r: CheckResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.imageEndOffset !== undefined) out['image-end-offset'] = r.imageEndOffset;
  if (r.totalClusters !== undefined) out['total-clusters'] = r.totalClusters;
  out['check-errors'] = r.checkErrors;
  if (r.leaks) out.leaks = r.leaks;
  if (r.corruptions) out.corruptions = r.corruptions;
  if (r.allocatedClusters !== undefined) out['allocated-clusters'] = r.allocatedClusters;
  if (r.fragmentedClusters !== undefined) out['fragmented-clusters'] = r.fragmentedClusters;
  if (r.compressedClusters !== undefined) out['compressed-clusters'] = r.compressedClusters;
  out.filename = r.filename;
  out.format = qemuName(r.format);
  return out;
}

/** Exit code when the format does not support checks (qemu-img's value). */
export const EXIT_CHECK_UNSUPPORTED = 63;

/** qemu-img check's exit codes: 0 clean, 1 check failed to complete, 2 corruptions, 3 leaks only. */
export function checkExitCode(r: CheckResult): number {
  if (r.checkErrors) return 1;
  if (r.corruptions) return 2;
  if (r.leaks) return 3;
  return 0;
}
