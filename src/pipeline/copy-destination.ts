import { basename, join } from 'node:path';
import type { ResolvedDisk } from './resolve.js';

/** The file a copy-to stage writes for a disk. */
export function copyDestination(disk: ResolvedDisk, dir: string): string {
  return join(dir, basename(disk.output ?? disk.source));
}
