import { createImage } from '../api/create.js';
import { UsageError } from '../errors.js';
import { qemuName } from '../formats/registry.js';
import { parseSize } from '../formats/shared/options.js';
import { printOptionHelpIfAsked } from './option-help.js';

export async function run(
  file: string | undefined,
  size: string | undefined,
  opts: { format?: string; options?: string; backing?: string; backingFormat?: string; force?: boolean; quiet?: boolean },
): Promise<void> {
  if (printOptionHelpIfAsked(opts.format ?? 'raw', opts.options)) return;
  if (!file) throw new UsageError('create needs a file name: guestkit create -f FMT FILE SIZE');
  const r = await createImage({
    format: opts.format,
    path: file,
    size: size !== undefined ? parseSize(size) : undefined,
    options: opts.options,
    backingFile: opts.backing,
    backingFormat: opts.backingFormat,
    force: opts.force,
  });
  if (!opts.quiet) {
    process.stdout.write(`Formatting '${r.path}', fmt=${qemuName(r.format)} size=${r.virtualSize}${opts.backing ? ` backing_file=${opts.backing}` : ''}\n`);
  }
}
