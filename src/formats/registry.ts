/**
 * The list of format drivers. Adding a format is one import and one line here.
 * Order matters only for ties in detection, which distinct magics never produce.
 */
import { UsageError } from '../errors.js';
import type { FormatDriver } from './types.js';
import { rawDriver } from './raw/driver.js';
import { qcow2Driver } from './qcow2/driver.js';
import { qcowDriver } from './qcow/driver.js';
import { vmdkDriver } from './vmdk/driver.js';
import { vhdDriver } from './vhd/driver.js';
import { vdiDriver } from './vdi/driver.js';
import { vhdxDriver } from './vhdx/driver.js';

const ALL: readonly FormatDriver[] = [qcow2Driver, qcowDriver, vmdkDriver, vhdDriver, vdiDriver, vhdxDriver, rawDriver];

const FALLBACK: FormatDriver = (() => {
  const found = ALL.filter((d) => d.fallback);
  if (found.length !== 1) throw new Error(`the registry needs exactly one fallback driver, not ${found.length}`);
  return found[0];
})();

export function drivers(): readonly FormatDriver[] {
  return ALL;
}

export function byName(name: string): FormatDriver {
  const n = name.toLowerCase();
  const d = ALL.find((x) => x.name === n || x.qemuName === n || x.aliases?.includes(n));
  if (!d) throw new UsageError(`unknown format '${name}'; known formats: ${ALL.map((x) => x.name).join(', ')}`);
  return d;
}

/** The driver whose extension matches the file name, for choosing an output format. */
export function byExtension(fileName: string): FormatDriver | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(fileName);
  if (!m) return undefined;
  const ext = m[1].toLowerCase();
  return ALL.find((d) => d.extensions.includes(ext) && d.capabilities.write) ?? ALL.find((d) => d.extensions.includes(ext));
}

/** The name qemu-img knows a format by (VHD is "vpc"), for JSON output and backing-format fields. */
export function qemuName(format: string): string {
  const d = ALL.find((x) => x.name === format);
  return d?.qemuName ?? format;
}

/** The catch-all driver (raw): what unrecognised content detects as, and the default output format. */
export function fallbackDriver(): FormatDriver {
  return FALLBACK;
}
