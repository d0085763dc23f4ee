import { measure } from '../api/measure.js';
import { UsageError } from '../errors.js';
import { parseSize } from '../formats/shared/options.js';
import { outputMode, printJson } from './output.js';
import { printOptionHelpIfAsked } from './option-help.js';

export async function run(
  source: string | undefined,
  opts: { outputFormat?: string; options?: string; size?: string; sourceFormat?: string; json?: boolean; output?: string; allowOutside?: boolean },
): Promise<void> {
  const mode = outputMode(opts);
  if (!opts.outputFormat) throw new UsageError('measure needs the output format: guestkit measure -O FMT SOURCE');
  if (printOptionHelpIfAsked(opts.outputFormat, opts.options)) return;
  if (!source && !opts.size) throw new UsageError('measure needs a source image or --size SIZE');
  if (source && opts.size) throw new UsageError('give either a source image or --size, not both');
  const r = await measure({
    format: opts.outputFormat,
    options: opts.options,
    source,
    sourceFormat: opts.sourceFormat,
    size: opts.size !== undefined ? parseSize(opts.size) : undefined,
    allowOutside: opts.allowOutside,
  });
  if (mode === 'json') printJson(r);
  else process.stdout.write(`required size: ${r.required}\nfully allocated size: ${r['fully-allocated']}\n`);
}
