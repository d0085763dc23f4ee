import { EXIT_CHECK_UNSUPPORTED, checkExitCode, checkImage, checkJson } from '../api/check.js';
import { UsageError } from '../errors.js';
import { outputMode, printJson } from './output.js';

export async function run(image: string | undefined, opts: { json?: boolean; output?: string; format?: string; quiet?: boolean }): Promise<void> {
  if (!image) throw new UsageError('no image given: guestkit check IMAGE');
  const mode = outputMode(opts);
  const r = await checkImage(image, { format: opts.format });
  if (!r) {
    process.stderr.write(`guestkit: ${image}: this image format does not support checks\n`);
    process.exitCode = EXIT_CHECK_UNSUPPORTED;
    return;
  }
  if (mode === 'json') printJson(checkJson(r));
  else if (!opts.quiet) {
    const lines = [...r.messages];
    if (r.corruptions === 0 && r.leaks === 0 && r.checkErrors === 0) lines.push('No errors were found on the image.');
    else {
      if (r.corruptions) lines.push('', `${r.corruptions} errors were found on the image.`, 'Data may be corrupted, or further writes to the image may corrupt it.');
      if (r.leaks) lines.push('', `${r.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
      if (r.checkErrors) lines.push('', `${r.checkErrors} internal errors have occurred during the check.`);
    }
    if (r.totalClusters !== undefined && r.allocatedClusters !== undefined) {
      const pct = (x: number) => (r.totalClusters ? ((100 * x) / r.totalClusters).toFixed(2) : '0.00');
      lines.push(
        `${r.allocatedClusters}/${r.totalClusters} = ${pct(r.allocatedClusters)}% allocated, ${pct(r.fragmentedClusters ?? 0)}% fragmented, ${pct(r.compressedClusters ?? 0)}% compressed clusters`,
      );
    }
    if (r.imageEndOffset !== undefined) lines.push(`Image end offset: ${r.imageEndOffset}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.exitCode = checkExitCode(r);
}
