/** The hook that lets every command that opens an image by path open a disk inside an OVA. */
import { UsageError } from '../errors.js';
import type { ByteSource } from '../stream/source.js';
import type { ImageReader } from '../formats/types.js';
import { looksLikeOva, Ova } from './ova.js';
import type { DiskOpeners } from './openers.js';

/**
 * The disk `disk` of the OVA in `source`, or undefined when the source is not an OVA (unless
 * `required`). The reader's close() releases the OVA's file too.
 */
export async function openOvaDisk(source: ByteSource, disk: string | undefined, openers: DiskOpeners, required = false): Promise<ImageReader | undefined> {
  if (!source.seekable) return undefined;
  const head = await source.readUpTo(0, 4096);
  if (!looksLikeOva(head)) {
    if (required) throw new UsageError('not an OVA: no tar header naming an OVF descriptor', { file: source.name });
    return undefined;
  }
  const ova = await Ova.fromSource(source);
  // The manifest is checked before a disk is read: one extra pass over its stored (compressed) bytes.
  const reader = await ova.openDisk(disk, openers, { verify: true });
  return closingBoth(reader, () => ova.close());
}

export function closingBoth(reader: ImageReader, after: () => Promise<void>): ImageReader {
  return new Proxy(reader, {
    get(target, prop, receiver) {
      if (prop === 'close') {
        return async () => {
          try {
            await target.close();
          } finally {
            await after();
          }
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
