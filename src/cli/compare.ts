import { compareImages } from '../api/compare.js';
import { UsageError } from '../errors.js';
import { ProgressBar } from './progress.js';

/** qemu-img compare's exit codes: 0 identical, 1 different, 2 error (set by main for thrown errors). */
export async function run(
  a: string | undefined,
  b: string | undefined,
  opts: { formatA?: string; formatB?: string; strict?: boolean; progress?: boolean; allowOutside?: boolean; quiet?: boolean; disk?: string },
): Promise<void> {
  if (!a || !b) throw new UsageError('compare needs two images: guestkit compare A B');
  const bar = opts.progress ? new ProgressBar(process.stderr) : undefined;
  const r = await compareImages(a, b, {
    formatA: opts.formatA,
    formatB: opts.formatB,
    strict: opts.strict,
    allowOutside: opts.allowOutside,
    disk: opts.disk,
    onProgress: bar ? (d, t) => bar.update(d, t) : undefined,
  });
  bar?.finish();
  if (!opts.quiet) process.stdout.write(`${r.message}\n`);
  process.exitCode = r.identical ? 0 : 1;
}
