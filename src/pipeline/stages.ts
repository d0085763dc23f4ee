/**
 * What each stage does, in terms of the format-neutral library calls only (detect, info,
 * convert, compare, checksum, and a file copy), so the pipeline works for every format the
 * drivers can read and write, as they land. The operations are an object so embedders and tests
 * can wrap them (to inject a fault, to count calls) without touching the runner.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { convert, type ConvertOptions, type ConvertResult } from '../api/convert.js';
import { toIoError } from '../errors.js';
import { detectFormat, imageInfo, type DetectResult, type QemuStyleInfo } from '../api/info.js';
import { compareImages, type CompareOptions, type CompareResult } from '../api/compare.js';
import { checksumReader } from '../api/checksum.js';
import { openImage } from '../formats/open.js';
import { byName } from '../formats/registry.js';
import { copyImageFiles, type CopyToOptions } from './copy-files.js';
import { OutputExistsError, VerificationError } from './errors.js';
import type { ResolvedDisk, ResolvedStage } from './resolve.js';
import { copyDestination } from './copy-destination.js';

export interface StageOperations {
  detectFormat(path: string): Promise<DetectResult>;
  imageInfo(path: string, opts: { format?: string }): Promise<QemuStyleInfo>;
  convert(opts: ConvertOptions): Promise<ConvertResult>;
  compareImages(a: string, b: string, opts: CompareOptions): Promise<CompareResult>;
  checksum(path: string, opts: { format?: string; onProgress?: (done: number, total: number) => void }): Promise<string>;
  copyTo(image: string, dir: string, opts: CopyToOptions): Promise<string[]>;
}

async function checksumWithProgress(path: string, opts: { format?: string; onProgress?: (done: number, total: number) => void }): Promise<string> {
  const reader = await openImage(path, { format: opts.format });
  try {
    return await checksumReader(reader, opts.onProgress);
  } finally {
    await reader.close();
  }
}

export const defaultOperations: StageOperations = {
  detectFormat,
  imageInfo,
  convert,
  compareImages,
  checksum: checksumWithProgress,
  copyTo: copyImageFiles,
};

export interface StageContext {
  disk: ResolvedDisk;
  ops: StageOperations;
  signal?: AbortSignal;
  progress: (done: number, total: number) => void;
  /** Output folders this run has already created or found (see prepareOutput). */
  knownFolders?: Set<string>;
}

/** Same format, allowing for aliases (qemu's vpc is our vhd). */
function sameFormat(a: string, b: string): boolean {
  try {
    return byName(a).name === byName(b).name;
  } catch {
    return a === b;
  }
}

/** Which image a checksum or copy-to stage works on: the output when the disk has one. */
function targetOf(disk: ResolvedDisk, of?: 'source' | 'output'): { path: string; format?: string } {
  if (of === 'source' || disk.output === undefined) return { path: disk.source, format: disk.sourceFormat };
  return { path: disk.output, format: disk.format };
}

/**
 * A file a stage is about to write that is already there. Most often it is what an earlier run
 * of the same plan wrote, so the message names both ways on: skip finished disks, or replace.
 * (The atomic output checks again when it commits; this check is for the message.)
 */
function outputExists(path: string, cause?: unknown): OutputExistsError {
  return new OutputExistsError(
    `output ${path} already exists (from an earlier run?): run with --resume to skip the disks an earlier run finished, ` +
      `or with --force (or "force": true for this disk in the plan) to replace it`,
    { file: path, cause },
  );
}

async function refuseExisting(path: string, disk: ResolvedDisk): Promise<void> {
  if (disk.force) return;
  if (await stat(path).then(() => true, () => false)) throw outputExists(path);
}

/**
 * The atomic output's own refusal of an existing output, in the pipeline's words. Recognised
 * after the fact rather than by a stat before converting: that stat would be a second file
 * system round trip for every disk, which doubled the time of a plan whose disks fail fast.
 */
function explainExisting(e: unknown, disk: ResolvedDisk): unknown {
  const refused = !disk.force && e instanceof OutputExistsError && e.file === disk.output;
  return refused ? outputExists(disk.output!, e) : e;
}

/** Folders a run remembers having made sure of, at most this many at a time. */
const KNOWN_FOLDERS = 4096;

/**
 * The output's folder is created, as copy-to creates its folder: plans name outputs in new
 * folders. A run's disks mostly share a few folders, and a recursive mkdir of an existing one
 * costs more than the failed conversion of a missing source, so each is made sure of once a run.
 */
async function prepareOutput(disk: ResolvedDisk, known?: Set<string>): Promise<void> {
  const dir = dirname(disk.output!);
  if (known?.has(dir)) return;
  await mkdir(dir, { recursive: true }).catch((e) => Promise.reject(toIoError(e, dir, 'create folder')));
  if (known && known.size >= KNOWN_FOLDERS) known.clear();
  known?.add(dir);
}

/** Runs one stage and returns what it found, for the stage-done event and the resume state. */
export async function runStage(stage: ResolvedStage, ctx: StageContext): Promise<Record<string, unknown>> {
  const { disk, ops } = ctx;
  switch (stage.type) {
    case 'detect': {
      const found = await ops.detectFormat(disk.source);
      if (stage.expect !== undefined && !sameFormat(found.format, stage.expect)) {
        throw new VerificationError(`detected as ${found.format}, expected ${stage.expect}`, { file: disk.source });
      }
      return { format: found.format, ...(found.subformat ? { subformat: found.subformat } : {}) };
    }
    case 'inspect-info':
      return { ...(await ops.imageInfo(disk.source, { format: disk.sourceFormat })) };
    case 'convert': {
      await prepareOutput(disk, ctx.knownFolders);
      let r: ConvertResult;
      try {
        r = await ops.convert({
          source: disk.source,
          output: disk.output!,
          sourceFormat: disk.sourceFormat,
          format: disk.format,
          compress: disk.compress,
          options: disk.options,
          force: disk.force,
          signal: ctx.signal,
          onProgress: (p) => ctx.progress(p.done, p.total),
        });
      } catch (e) {
        throw explainExisting(e, disk);
      }
      return { sourceFormat: r.sourceFormat, format: r.format, virtualSize: r.virtualSize, outputSize: r.outputSize, seconds: r.seconds };
    }
    case 'verify': {
      const r = await ops.compareImages(disk.source, disk.output!, {
        formatA: disk.sourceFormat,
        formatB: disk.format,
        strict: stage.strict,
        onProgress: ctx.progress,
      });
      if (!r.identical) {
        throw new VerificationError(`output differs from the source: ${r.message}`, { file: disk.output, offset: r.mismatchOffset });
      }
      return { identical: true, message: r.message };
    }
    case 'checksum': {
      const target = targetOf(disk, stage.of);
      const sha256 = await ops.checksum(target.path, { format: target.format, onProgress: ctx.progress });
      if (stage.expect !== undefined && sha256 !== stage.expect) {
        throw new VerificationError(`virtual content hashes to ${sha256}, expected ${stage.expect}`, { file: target.path });
      }
      return { sha256, of: target.path === disk.source ? 'source' : 'output' };
    }
    case 'copy-to': {
      const target = targetOf(disk);
      await refuseExisting(copyDestination(disk, stage.dir), disk);
      const files = await ops.copyTo(target.path, stage.dir, { format: target.format, force: disk.force, signal: ctx.signal, onProgress: ctx.progress });
      return { files };
    }
  }
}
