/** guestkit's public library API. */
export * from './errors.js';
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
} from './formats/types.js';
export { drivers, byName, byExtension } from './formats/registry.js';
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
  type PipelinePlan,
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
export * from './guest/index.js';
