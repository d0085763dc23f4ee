/**
 * The one canonical form of a local path: symlinks followed where the path exists, else just made
 * absolute (an output not yet created, a dangling link). Used wherever two names must be compared
 * as the same file or a chain must recognise an image it has already opened.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';

export function realPathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
