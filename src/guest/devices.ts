/** The images of one machine as block devices, named as libguestfs names them: /dev/sda, /dev/sdb, … */
import { LimitExceededError } from '../errors.js';
import type { ImageReader } from '../formats/types.js';
import { DiskView } from './view.js';

/** /dev/sdz is followed by /dev/sdaa, as Linux's sd driver counts (bijective base 26). */
export function deviceName(index: number): string {
  let n = index + 1;
  let s = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(97 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return `/dev/sd${s}`;
}

/** libguestfs itself attaches at most 255 disks to its appliance; beyond that a caller has made a mistake. */
export const MAX_DEVICES = 255;

export interface Device {
  name: string;
  /** The file the image was opened from (or the reader's description). */
  source: string;
  view: DiskView;
}

export function devicesOf(readers: readonly { reader: ImageReader; source: string }[]): Device[] {
  if (readers.length > MAX_DEVICES) {
    throw new LimitExceededError(`${readers.length} disks given, more than ${MAX_DEVICES}`, { field: 'devices' });
  }
  return readers.map(({ reader, source }, i) => {
    const name = deviceName(i);
    return { name, source, view: new DiskView(reader, name) };
  });
}

/** The name of partition `n` of a device: /dev/sda1 (libguestfs canonical names never use the "p" infix). */
export const partitionName = (device: string, n: number): string => `${device}${n}`;
