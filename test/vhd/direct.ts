/**
 * Opens VHD/VDI images through their drivers directly, with an OpenContext that behaves like
 * src/formats/open.ts (depth and loop checks, same confinement flags) but does not load the
 * registry, so these tests exercise only the VHD/VDI code. The registry path itself is covered by
 * the oracle tests, which go through openImage/imageInfo/convert.
 */
import { realpathSync } from 'node:fs';
import { CorruptImageError, LimitExceededError } from '../../src/errors.js';
import { vdiDriver } from '../../src/formats/vdi/driver.js';
import { vhdDriver } from '../../src/formats/vhd/driver.js';
import type { ImageReader, OpenContext } from '../../src/formats/types.js';
import { BufferSource, FileSource, type ByteSource } from '../../src/stream/source.js';

const MAX_DEPTH = 64;

function context(file: string, path: string | undefined, opts: { allowOutside?: boolean; openBacking?: boolean }, depth = 0, chain: string[] = []): OpenContext {
  return {
    file,
    path,
    allowOutside: opts.allowOutside ?? false,
    openBacking: opts.openBacking ?? true,
    depth,
    chain,
    async openImage(p, _format, parent) {
      if (parent.depth + 1 > MAX_DEPTH) throw new LimitExceededError('chain too deep', { file: parent.file });
      const key = realpathSync(p);
      if (parent.chain.includes(key)) throw new CorruptImageError(`backing chain loops back to ${p}`, { file: parent.file });
      const src = await FileSource.open(p);
      try {
        return await vhdDriver.open!(src, context(p, p, parent, parent.depth + 1, [...parent.chain, key]));
      } catch (e) {
        await src.close();
        throw e;
      }
    },
  };
}

export interface DirectOptions {
  allowOutside?: boolean;
  openBacking?: boolean;
}

async function openWith(driver: typeof vhdDriver, source: ByteSource, file: string, path: string | undefined, opts: DirectOptions): Promise<ImageReader> {
  try {
    return await driver.open!(source, context(file, path, opts, 0, path ? [realpathSync(path)] : []));
  } catch (e) {
    await source.close();
    throw e;
  }
}

export async function openVhdFile(path: string, opts: DirectOptions = {}): Promise<ImageReader> {
  return openWith(vhdDriver, await FileSource.open(path), path, path, opts);
}

export async function openVdiFile(path: string, opts: DirectOptions = {}): Promise<ImageReader> {
  return openWith(vdiDriver, await FileSource.open(path), path, path, opts);
}

export function openVhdBytes(bytes: Uint8Array, opts: DirectOptions = {}): Promise<ImageReader> {
  return openWith(vhdDriver, new BufferSource(bytes, 'image.vhd'), 'image.vhd', undefined, opts);
}

export function openVdiBytes(bytes: Uint8Array): Promise<ImageReader> {
  return openWith(vdiDriver, new BufferSource(bytes, 'image.vdi'), 'image.vdi', undefined, {});
}

/** The whole virtual disk. */
export async function readWhole(r: ImageReader): Promise<Uint8Array> {
  return r.read(0, r.virtualSize);
}
