/**
 * The seed toolkit's shape, kept so its users can switch without rewriting:
 * `new DiskConverter().convert(source, output, format, compress, flatten)`.
 * `flatten` is accepted and has no effect: backing chains are always flattened into the output
 * (an overlay output is made with convert()'s `backingFile`).
 */
import { convert, type ConvertResult } from './convert.js';

export class DiskConverter {
  async convert(source: string, output: string, format?: string, compress = false, _flatten = true): Promise<ConvertResult> {
    return convert({ source, output, format, compress });
  }
}
