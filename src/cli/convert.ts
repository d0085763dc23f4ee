import { convert, outputDriverFor } from '../api/convert.js';
import { printOptionHelpIfAsked } from './option-help.js';
import { UsageError } from '../errors.js';
import { parseSize } from '../formats/shared/options.js';
import { humanSize, printJson } from './output.js';
import { ProgressBar } from './progress.js';
import type { CopyProgress } from '../stream/copy.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { byName } from '../formats/registry.js';
import { ovaInfoIfOva } from '../ova/describe.js';

interface Flags {
  sourceFormat?: string;
  format?: string;
  compress?: boolean;
  compressOutput?: boolean;
  options?: string;
  p?: boolean;
  progress?: string;
  sparseSize?: string;
  parallel?: string;
  force?: boolean;
  cache?: string;
  allowOutside?: boolean;
  json?: boolean;
  backing?: string;
  backingFormat?: string;
  /** commander's --no-create: false when -n is given. */
  create?: boolean;
  targetIsZero?: boolean;
  quiet?: boolean;
  disk?: string;
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
  // `convert -O FMT -o help` needs no file names (as qemu-img).
  if (printOptionHelpIfAsked(f.format ?? (output ? outputDriverFor(output, undefined).name : 'raw'), f.options)) return;
  if (!source || !output) throw new UsageError('convert needs a source and an output: guestkit convert [options] SOURCE OUTPUT');
  // `convert vm.ova OUTDIR/`: every disk of the OVA, as OUTDIR/<disk-id>.<ext>.
  if (output.endsWith('/') && f.disk === undefined && source !== '-') {
    const ova = await ovaInfoIfOva(source);
    if (!ova) throw new UsageError(`an output ending in / is a folder, which only an OVA source (one file per disk) can fill`, { file: output });
    const ext = byName(f.format ?? 'raw').extensions[0] ?? f.format ?? 'raw';
    await mkdir(output, { recursive: true });
    for (const d of ova.disks) await run(source, join(output, `${d.id.replace(/[^\w.-]/g, '_')}.${ext}`), { ...f, disk: String(d.index) });
    return;
  }
  const parallel = f.parallel !== undefined ? Number(f.parallel) : undefined;
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)) {
    throw new UsageError(`-m takes a number of jobs from 1 to 64, not '${f.parallel}'`);
  }
  const asked = f.progress ?? (f.p ? 'bar' : undefined);
  if (asked !== undefined && asked !== 'bar' && asked !== 'json') throw new UsageError(`--progress takes bar or json, not '${asked}'`);
  // -q silences everything but errors, progress included (qemu-img: -q wins over -p).
  const mode = f.quiet ? undefined : asked;
  const bar = mode === 'bar' ? new ProgressBar(process.stderr) : undefined;
  const started = performance.now();
  let last: CopyProgress = { done: 0, total: 0, bytesRead: 0 };
  let lastJson = 0;
  let lastJsonDone = -1;
  const progressLine = (p: CopyProgress) => {
    const secs = (performance.now() - started) / 1000;
    return JSON.stringify({ done: p.done, total: p.total, bytesPerSecond: secs > 0 ? Math.round(p.done / secs) : 0 });
  };
  const onProgress = (p: CopyProgress) => {
    last = p;
    bar?.update(p.done, p.total);
    if (mode === 'json') {
      const now = performance.now();
      if ((now - lastJson >= 200 || p.done === p.total) && p.done !== lastJsonDone) {
        lastJson = now;
        lastJsonDone = p.done;
        process.stderr.write(`${progressLine(p)}\n`);
      }
    }
  };
  // As qemu-img: SIGUSR1 prints one progress line, whatever the mode.
  const onUsr1 = () => process.stderr.write(`${progressLine(last)}\n`);
  process.on('SIGUSR1', onUsr1);
  const result = await convert({
    source,
    output,
    sourceFormat: f.sourceFormat,
    disk: f.disk,
    format: f.format,
    compress: f.compress || f.compressOutput,
    options: f.options,
    force: f.force,
    durable: cacheMode(f.cache),
    allowOutside: f.allowOutside,
    sparseSize: f.sparseSize !== undefined ? parseSize(f.sparseSize, '-S size') : undefined,
    parallelism: parallel,
    backingFile: f.backing,
    backingFormat: f.backingFormat,
    existing: f.create === false,
    targetIsZero: f.targetIsZero,
    onProgress,
  }).finally(() => process.off('SIGUSR1', onUsr1));
  bar?.finish();
  if (f.quiet) return;
  if (f.json) printJson(result);
  else if (output !== '-' && mode === 'bar') {
    process.stderr.write(`${result.sourceFormat} → ${result.format}: ${humanSize(result.virtualSize)} virtual, ${humanSize(result.outputSize)} written in ${result.seconds.toFixed(2)} s\n`);
  }
}
