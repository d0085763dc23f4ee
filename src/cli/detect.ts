import { detectFormat } from '../api/info.js';
import { UsageError } from '../errors.js';
import { outputMode, printJson } from './output.js';

export async function run(image: string | undefined, opts: { json?: boolean; output?: string }): Promise<void> {
  if (!image) throw new UsageError('no image given: guestkit detect IMAGE');
  const mode = outputMode(opts);
  const r = await detectFormat(image);
  if (mode === 'json') printJson(r);
  else process.stdout.write(`${r.format}${r.subformat ? ` (${r.subformat})` : ''}\n`);
}
