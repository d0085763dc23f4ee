/**
 * Fault injection for the spawned CLI (test/pipeline/cli-entry.ts reads GUESTKIT_TEST_FAULT):
 * `STAGE:NAME` makes the operation behind STAGE fail for the image whose file name starts with
 * NAME, the way the engine's worst bug did: it throws, and it also leaves a rejected promise
 * that nothing will ever handle.
 */
import { basename } from 'node:path';
import { CorruptImageError } from '../../src/errors.js';
import { defaultOperations, type StageOperations } from '../../src/pipeline/stages.js';

const OPERATION: Record<string, keyof StageOperations> = {
  detect: 'detectFormat',
  'inspect-info': 'imageInfo',
  convert: 'convert',
  verify: 'compareImages',
  checksum: 'checksum',
  'copy-to': 'copyTo',
};

export function injectFault(spec: string): void {
  const [stage, victim] = spec.split(':');
  const name = OPERATION[stage];
  if (!name || !victim) throw new Error(`bad fault spec ${spec}`);
  const real = defaultOperations[name] as (...args: unknown[]) => Promise<unknown>;
  (defaultOperations as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    const first = args[0];
    const path = typeof first === 'string' ? first : (first as { source: string }).source;
    if (basename(path).startsWith(victim)) {
      void Promise.reject(new Error(`stray rejection left by ${stage}`));
      throw new CorruptImageError(`injected fault in ${stage}`, { file: path });
    }
    return real(...args);
  };
}
