/**
 * The copy-to stage: an image's files copied into a folder, atomically (each copy is written
 * under a temporary name and renamed only when all of them are complete) and sparsely (runs of
 * zeros are left as holes, so a mostly empty raw disk stays mostly empty on the other side).
 */
import { mkdir, open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AbortedError, UsageError, toIoError } from '../errors.js';
import { openImage } from '../formats/open.js';
import { AtomicOutput } from '../stream/atomic.js';
import type { ByteSink } from '../stream/sink.js';
import { scanZeroRuns } from '../stream/zero.js';

const COPY_CHUNK = 1024 * 1024;
/** Zero runs shorter than this are written out: a filesystem block, the smallest possible hole. */
const HOLE_GRANULARITY = 4096;

/**
 * The files an image is made of that live in its own folder (a split VMDK's extents, say), the
 * image first. Backing files elsewhere are not copied: a converted output never has one.
 */
export async function imageFiles(image: string, format?: string): Promise<string[]> {
  let files: string[];
  try {
    const reader = await openImage(image, { format });
    try {
      files = reader.files();
    } finally {
      await reader.close();
    }
  } catch {
    // Not an image we can open (or no longer one): it is still a file we can copy.
    return [image];
  }
  const dir = dirname(resolve(image));
  const own = files.map((f) => resolve(f)).filter((f) => dirname(f) === dir);
  const first = resolve(image);
  return [first, ...own.filter((f) => f !== first)];
}

async function copySparse(from: string, sink: ByteSink, buf: Uint8Array, onBytes: (n: number) => void, signal?: AbortSignal): Promise<void> {
  let fh;
  try {
    fh = await open(from, 'r');
  } catch (e) {
    throw toIoError(e, from, 'open');
  }
  try {
    const { size } = await fh.stat();
    for (let pos = 0; pos < size; ) {
      if (signal?.aborted) throw new AbortedError('copy cancelled', { file: from });
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos));
      } catch (e) {
        throw toIoError(e, from, 'read', pos);
      }
      if (n === 0) break; // the file shrank under us; the length is set below all the same
      const chunk = buf.subarray(0, n);
      const data: Array<[number, number]> = [];
      scanZeroRuns(chunk, HOLE_GRANULARITY, (start, end, zero) => {
        if (!zero) data.push([start, end]);
      });
      for (const [start, end] of data) await sink.write(pos + start, chunk.subarray(start, end));
      pos += n;
      onBytes(n);
    }
    await sink.setLength(size);
  } finally {
    await fh.close();
  }
}

export interface CopyToOptions {
  format?: string;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Copies `image` (and its side files) into `dir`; returns the paths written. */
export async function copyImageFiles(image: string, dir: string, opts: CopyToOptions = {}): Promise<string[]> {
  const files = await imageFiles(image, opts.format);
  await mkdir(dir, { recursive: true }).catch((e) => {
    throw toIoError(e, dir, 'create folder');
  });
  const targetDir = await realpath(dir);
  if (targetDir === (await realpath(dirname(files[0])))) {
    throw new UsageError(`copy-to folder ${dir} is the folder the image is in`, { file: image });
  }
  const destinations = files.map((f) => join(targetDir, basename(f)));
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size, (e) => Promise.reject(toIoError(e, f, 'stat')))));
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  const onBytes = (n: number) => opts.onProgress?.((done += n), total);
  let output: AtomicOutput | undefined;
  const buf = new Uint8Array(COPY_CHUNK);
  try {
    for (let i = 0; i < files.length; i++) {
      let sink: ByteSink;
      if (!output) ({ output, sink } = await AtomicOutput.create(destinations[i], { force: opts.force }));
      else sink = await output.add(destinations[i]);
      await copySparse(files[i], sink, buf, onBytes, opts.signal);
    }
    await output?.commit();
  } catch (e) {
    await output?.discard();
    throw e;
  }
  return destinations;
}
