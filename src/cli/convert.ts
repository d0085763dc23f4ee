import { convert } from '../api/convert.js';
import { UsageError } from '../errors.js';
import { parseSize } from '../formats/shared/options.js';
import { humanSize, printJson } from './output.js';
import { ProgressBar } from './progress.js';

interface Flags {
  sourceFormat?: string;
  format?: string;
  compress?: boolean;
  compressOutput?: boolean;
  options?: string;
  progress?: boolean;
  sparseSize?: string;
  parallel?: string;
  force?: boolean;
  cache?: string;
  allowOutside?: boolean;
  json?: boolean;
}

/** qemu-img's -t: 'unsafe' skips the final fsync; every other mode keeps it. */
function cacheMode(mode: string | undefined): boolean {
  if (mode === undefined) return true;
  if (!['none', 'writeback', 'writethrough', 'directsync', 'unsafe'].includes(mode)) {
    throw new UsageError(`invalid cache mode '${mode}': use writeback (default, fsync before rename) or unsafe (no fsync)`);
  }
  return mode !== 'unsafe';
}

export async function run(source: string | undefined, output: string | undefined, f: Flags): Promise<void> {
  if (!source || !output) throw new UsageError('convert needs a source and an output: guestkit convert [options] SOURCE OUTPUT');
  const parallel = f.parallel !== undefined ? Number(f.parallel) : undefined;
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)) {
    throw new UsageError(`-m takes a number of jobs from 1 to 64, not '${f.parallel}'`);
  }
  const bar = f.progress ? new ProgressBar(process.stderr) : undefined;
  const result = await convert({
    source,
    output,
    sourceFormat: f.sourceFormat,
    format: f.format,
    compress: f.compress || f.compressOutput,
    options: f.options,
    force: f.force,
    durable: cacheMode(f.cache),
    allowOutside: f.allowOutside,
    sparseSize: f.sparseSize !== undefined ? parseSize(f.sparseSize, '-S size') : undefined,
    parallelism: parallel,
    onProgress: bar ? (p) => bar.update(p.done, p.total) : undefined,
  });
  bar?.finish();
  if (f.json) printJson(result);
  else if (output !== '-' && f.progress) {
    process.stderr.write(`${result.sourceFormat} → ${result.format}: ${humanSize(result.virtualSize)} virtual, ${humanSize(result.outputSize)} written in ${result.seconds.toFixed(2)} s\n`);
  }
}
