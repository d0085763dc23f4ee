/** guestkit's public library API. */
import type * as z from 'zod';
import type { defaultsSchema, diskSchema, headerSchema, retrySchema, stageSchema } from './pipeline/schema.js';
export * from './errors.js';
export * from './guest/index.js';
export type {
  Extent,
  FormatInfo,
  SnapshotInfo,
  ImageReader,
  ImageWriter,
  FormatDriver,
  Capabilities,
  ProbeInput,
  ProbeResult,
  CreateSpec,
  OpenContext,
  InPlaceSpec,
} from './formats/types.js';
export { drivers, byName, byExtension, qemuName, fallbackDriver } from './formats/registry.js';
export { openPipe } from './formats/open.js';
export { detectBytes, detectSource, type Detection } from './formats/detect.js';
export { openImage, openSource, MAX_CHAIN_DEPTH, type OpenOptions } from './formats/open.js';
export { convert, type ConvertOptions, type ConvertResult } from './api/convert.js';
export { imageInfo, detectFormat, toQemuInfo, type QemuStyleInfo, type DetectResult } from './api/info.js';
export { DiskConverter } from './api/compat.js';
export { copyImage, type CopyOptions, type CopyStats, type CopyProgress } from './stream/copy.js';
export { FileSource, BufferSource, StreamSource, type ByteSource } from './stream/source.js';
export { FileSink, BufferSink, StreamSink, type ByteSink } from './stream/sink.js';
export { withRetry, retryingSource, retryingSink, type RetryPolicy } from './stream/retry.js';
export { parseSize, parseOptionString } from './formats/shared/options.js';
export {
  runPipeline,
  validatePipelinePlan,
  defaultStatePath,
  PlanError,
  VerificationError,
  type RunPipelineOptions,
  type PipelineEvent,
  type PipelineSummary,
} from './api/pipeline.js';
export { compareImages, compareReaders, type CompareOptions, type CompareResult } from './api/compare.js';
export { checksumImage, checksumReader } from './api/checksum.js';
export { checkImage, checkJson } from './api/check.js';
export type { CheckResult } from './formats/types.js';
export { createImage, type CreateOptions } from './api/create.js';
export { mapImage, type MapEntry } from './api/map.js';
export { imageInfoChain } from './api/info.js';
export { measure, CountingSink, type MeasureOptions, type MeasureResult } from './api/measure.js';
export { resize, parseResizeSize, type ResizeImageOptions, type ResizeResult, type ResizeTarget } from './api/resize.js';

/*
 * A plan written in TypeScript, checked against the schema the runner validates with (the
 * types are the zod schemas' input types). Stages are the exception zod cannot infer: the
 * schema accepts a bare stage name by preprocessing, which erases the input type, so
 * PlanStage spells the two spellings out from the object schema. The same shape as a JSON
 * Schema for editors: schema/plan.schema.json (`import ... from 'guestkit/plan.schema.json'`).
 */

// Stage objects have no defaults, so their output type is their input type; the output side
// survives the preprocessing that turns the input side into `unknown`.
type StageObject = Exclude<z.output<typeof stageSchema>, string>;
/** A stage that takes no parameters may be written as its name alone: `'convert'`. */
type BareStage = { [K in StageObject['type']]: { type: K } extends Extract<StageObject, { type: K }> ? K : never }[StageObject['type']];
/** One step of a disk: `'convert'`, `{ type: 'checksum', expect: '…' }`, `{ type: 'copy-to', dir: '…' }`, … */
export type PlanStage = StageObject | BareStage;
/** Fields every disk of a plan takes unless it sets them itself. */
export type PlanDefaults = Omit<z.input<typeof defaultsSchema>, 'stages'> & { stages?: PlanStage[] };
/** One disk of a plan: a source, usually an output, and its stages. */
export type PlanDisk = Omit<z.input<typeof diskSchema>, 'stages'> & { stages?: PlanStage[] };
/** The retry policy of a plan's stages. */
export type PlanRetry = z.input<typeof retrySchema>;
/** A whole plan held in memory, as `runPipeline(plan)` and `validatePipelinePlan(plan)` take it. */
export type PipelinePlan = Omit<z.input<typeof headerSchema>, 'defaults' | 'retry'> & { retry?: PlanRetry; defaults?: PlanDefaults; disks: PlanDisk[] };
