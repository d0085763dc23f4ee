import { resize } from '../api/resize.js';
import { UsageError } from '../errors.js';

export async function run(
  image: string | undefined,
  size: string | undefined,
  opts: { format?: string; shrink?: boolean; quiet?: boolean; allowOutside?: boolean },
): Promise<void> {
  // Unknown options reach here as arguments (see main.ts); a size may start with '-' and a digit.
  for (const arg of [image, size]) if (arg !== undefined && /^-(?![\d.])/.test(arg)) throw new UsageError(`unknown option '${arg}'`);
  if (!image || size === undefined) throw new UsageError('resize needs an image and a size: guestkit resize [-f FMT] [--shrink] IMAGE [+|-]SIZE');
  await resize({ image, size, format: opts.format, shrink: opts.shrink, allowOutside: opts.allowOutside });
  if (!opts.quiet) process.stdout.write('Image resized.\n');
}
