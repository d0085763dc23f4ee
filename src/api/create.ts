/** Creating an empty image (optionally an overlay on a backing image), like qemu-img create. */
import { UsageError } from '../errors.js';
import { writerByName } from '../formats/capabilities.js';
import { byName, fallbackDriver, qemuName } from '../formats/registry.js';
import { refuseUrl } from '../formats/shared/url.js';
import { openImage } from '../formats/open.js';
import { parseDriverOptions, optionRecord } from '../formats/shared/options.js';
import { AtomicOutput } from '../stream/atomic.js';
import { resolve, dirname } from 'node:path';

export interface CreateOptions {
  /** The format; the registry's fallback (raw) when omitted, as qemu-img create. */
  format?: string;
  path: string;
  /** Virtual size in bytes; taken from the backing image when omitted. */
  size?: number;
  options?: Record<string, unknown> | string;
  backingFile?: string;
  backingFormat?: string;
  force?: boolean;
}

export async function createImage(opts: CreateOptions): Promise<{ path: string; format: string; virtualSize: number }> {
  refuseUrl(opts.path, 'output');
  if (opts.backingFile) refuseUrl(opts.backingFile, 'backing file');
  const driver = writerByName(opts.format ?? fallbackDriver().name, { file: opts.path, backing: Boolean(opts.backingFile) });
  const raw = optionRecord(opts.options);
  if (opts.backingFile) {
    raw.backing_file = opts.backingFile;
    if (opts.backingFormat) raw.backing_fmt = qemuName(byName(opts.backingFormat).name);
  }
  let size = opts.size;
  if (size === undefined) {
    if (!opts.backingFile) throw new UsageError('an image size is required (or a backing file to take it from)');
    // The backing name is relative to the new image's folder, as it will be when the image is opened.
    const b = await openImage(resolve(dirname(opts.path), opts.backingFile), { format: opts.backingFormat, allowOutside: true });
    size = b.virtualSize;
    await b.close();
  }
  const options = parseDriverOptions(driver.optionsSchema, driver.name, raw);
  const { output, sink } = await AtomicOutput.create(opts.path, { force: opts.force });
  try {
    const writer = await driver.create(sink, {
      virtualSize: size,
      options: options as Record<string, unknown>,
      path: opts.path,
      file: opts.path,
      allocation: async function* () {},
      openSideFile: (p) => output.add(p),
    });
    await writer.finish();
    await output.commit();
  } catch (e) {
    await output.discard();
    throw e;
  }
  // Formats may round the size (VHD to a CHS geometry): report what the image says.
  const made = await openImage(opts.path, { format: driver.name, openBacking: false });
  const virtualSize = made.virtualSize;
  await made.close();
  return { path: opts.path, format: driver.name, virtualSize };
}
