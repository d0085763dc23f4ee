/**
 * The one place that says whether a driver can take a conversion's output: convert, create,
 * measure and plan validation ask the same question and give the same answer.
 */
import { UnsupportedFeatureError, UsageError, type GuestkitError } from '../errors.js';
import { drivers, outputFormatByName, writableList } from './registry.js';
import type { FormatDriver } from './types.js';

export interface WriteRequest {
  /** Compressed output is asked for (-c). */
  compress?: boolean;
  /** An overlay on a backing file is asked for (-B, create -b). */
  backing?: boolean;
  /** Named in messages. */
  file?: string;
}

/** Why `driver` cannot write what is asked (and which request field is at fault), or undefined when it can. */
export function writeRefusal(driver: FormatDriver, req: WriteRequest = {}): { field: 'format' | 'compress' | 'backing'; error: GuestkitError } | undefined {
  const where = req.file ? { file: req.file } : {};
  if (!driver.create || !driver.capabilities.write) {
    return { field: 'format', error: new UnsupportedFeatureError(`writing ${driver.name} images is not supported (guestkit only reads them); ${writableList()}`, where) };
  }
  if (req.compress && !driver.capabilities.compression) {
    return { field: 'compress', error: new UsageError(`format ${driver.name} does not support compression`, where) };
  }
  if (req.backing && !driver.capabilities.backing) {
    const able = drivers().filter((d) => d.capabilities.backing && d.capabilities.write);
    return { field: 'backing', error: new UsageError(`format ${driver.name} does not support backing files; use ${namesOf(able)}`, where) };
  }
  return undefined;
}

/** Throws the refusal, if any; afterwards `driver.create` is there. */
export function requireWriter(driver: FormatDriver, req: WriteRequest = {}): asserts driver is FormatDriver & Required<Pick<FormatDriver, 'create'>> {
  const refusal = writeRefusal(driver, req);
  if (refusal) throw refusal.error;
}

/** The driver for an output format by name, refused unless it can write what is asked. */
export function writerByName(name: string, req: WriteRequest = {}): FormatDriver & Required<Pick<FormatDriver, 'create'>> {
  const driver = outputFormatByName(name);
  requireWriter(driver, req);
  return driver;
}

/** Drivers by name, "a, b or c" (for messages that suggest another format). */
function namesOf(list: readonly FormatDriver[]): string {
  const names = list.map((d) => d.name);
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}
