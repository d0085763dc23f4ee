/**
 * The filesystem registry: a filesystem is a folder under src/guest/fs/ plus one line here. The
 * type comes from blkid-style identification (src/guest/probe.ts), so the driver that mounts a
 * device is always the one its TYPE names.
 */
import { UnsupportedFeatureError } from '../../errors.js';
import { identify } from '../probe.js';
import type { BlockView } from '../view.js';
import { extDriver } from './ext/index.js';
import { fatDriver } from './fat/index.js';
import type { FileSystem, FsDriver } from './types.js';

export const FS_DRIVERS: readonly FsDriver[] = [extDriver, fatDriver];

export function driverFor(type: string): FsDriver | undefined {
  return FS_DRIVERS.find((d) => d.types.includes(type));
}

/** Mounts the filesystem in `view` read-only; `type` skips identification when the caller already knows it. */
export async function mountView(view: BlockView, type?: string): Promise<FileSystem> {
  const t = type ?? (await identify(view))?.type;
  if (t === undefined) throw new UnsupportedFeatureError('no filesystem found on this device', { file: view.name });
  const driver = driverFor(t);
  if (!driver) {
    const known = FS_DRIVERS.flatMap((d) => d.types).join(', ');
    throw new UnsupportedFeatureError(`cannot read files of a ${t} filesystem yet (supported: ${known})`, { file: view.name });
  }
  return driver.mount(view, t);
}
