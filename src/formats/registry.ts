/**
 * The list of format drivers. Adding a format is one import and one line here.
 * Order matters only for ties in detection, which distinct magics never produce.
 */
import { UnsupportedFeatureError, UsageError } from '../errors.js';
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

/** Formats qemu-img knows that guestkit does not, so a refusal can say "known, not supported" rather than "unknown". */
const QEMU_ONLY: Record<string, string> = {
  qed: 'QEMU Enhanced Disk',
  parallels: 'Parallels',
  bochs: 'Bochs',
  cloop: 'compressed loop',
  dmg: 'Apple disk image',
  luks: 'LUKS-encrypted',
  vvfat: 'virtual FAT',
};

export function writableList(): string {
  const label = (d: FormatDriver) => {
    const other = [...(d.qemuName && d.qemuName !== d.name ? [d.qemuName] : []), ...(d.aliases ?? [])];
    return other.length ? `${d.name} (${[...new Set(other)].join(', ')})` : d.name;
  };
  const writable = ALL.filter((d) => d.capabilities.write && d.create).map(label);
  const readOnly = ALL.filter((d) => !(d.capabilities.write && d.create)).map(label);
  return `formats guestkit can write: ${writable.join(', ')}${readOnly.length ? `; it reads but cannot write ${readOnly.join(', ')}` : ''}`;
}

/**
 * The driver named as an output format (convert -O, create -f, measure -O): an unknown name is
 * refused with the list of formats that can be written. Whether it can write what is asked is
 * capabilities.ts's question (writerByName).
 */
export function outputFormatByName(name: string): FormatDriver {
  const n = name.toLowerCase();
  const d = ALL.find((x) => x.name === n || x.qemuName === n || x.aliases?.includes(n));
  if (!d) {
    const known = QEMU_ONLY[n] ? ` (${QEMU_ONLY[n]}, a qemu-img format guestkit does not support)` : '';
    throw new UsageError(`unknown output format '${name}'${known}; ${writableList()}`);
  }
  return d;
}
