/**
 * The seed toolkit's shape, kept so its users can switch without rewriting:
 * `new DiskConverter().convert(source, output, format, compress, flatten)`.
 */
import { convert, type ConvertResult } from './convert.js';

export class DiskConverter {
  async convert(source: string, output: string, format?: string, compress = false, flatten = true): Promise<ConvertResult> {
    return convert({ source, output, format, compress, flatten });
  }
}
