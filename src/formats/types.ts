/**
 * The contracts every format implements. A format is a folder plus one line in the registry;
 * nothing outside the folder knows its layout. Convert, map, compare and check use only
 * `read()` and `extents()` of a reader and the four calls of a writer.
 */
import type { z } from 'zod';
import type { ByteSource } from '../stream/source.js';
import type { ByteSink } from '../stream/sink.js';

/** A run of the virtual disk, as `qemu-img map` describes it. */
export interface Extent {
  offset: number;
  length: number;
  /**
   * One rule for every driver:
   * - data: bytes stored in some layer;
   * - zero: reads as zeros — a zero flag or zeroed grain, or a hole with nothing beneath it (an
   *   image without a backing file, or past the end of the backing image);
   * - unallocated: this layer has nothing here and the image names a backing file that was not
   *   opened (info, resize): what it reads as is not known. A reader whose backing chain is open
   *   resolves such runs through the chain, so convert, map and compare never see this kind.
   */
  kind: 'data' | 'zero' | 'unallocated';
  /** Which layer of the chain answered: 0 = the image itself, 1 = its backing file, … */
  depth: number;
  /**
   * false for a 'zero' run that no layer stores: a hole of a format that can have a backing file
   * (qcow2, VMDK), where qemu-img map says "present": false. Formats whose holes qemu reports as
   * present zeros (VHD, VDI) leave it out. Default: true unless kind is 'unallocated'.
   */
  present?: boolean;
  /** Where the data lives in its file, when it is stored there uncompressed (map's "offset"). */
  hostOffset?: number;
}

/** What `info` prints; formats add their own fields under `formatSpecific`. */
export interface FormatInfo {
  format: string;
  subformat?: string;
  virtualSize: number;
  clusterSize?: number;
  dirty?: boolean;
  backingFile?: string;
  backingFileFull?: string;
  backingFormat?: string;
  snapshots?: SnapshotInfo[];
  /** Shown under `format-specific` in JSON, mirroring qemu-img's `{type, data}`. */
  formatSpecific?: Record<string, unknown>;
  /** Non-fatal observations made while opening (damaged footer repaired from the copy, …). */
  warnings?: string[];
}

export interface SnapshotInfo {
  id: string;
  name: string;
  vmStateSize: number;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  icount?: number;
}

export interface ImageReader {
  readonly format: string;
  readonly virtualSize: number;
  /** Reads exactly `length` bytes of the virtual disk at `offset` (zeros past the data of any layer). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Allocation runs in increasing order, covering [from, to) without gaps. */
  extents(from?: number, to?: number): AsyncIterable<Extent>;
  info(): FormatInfo;
  /** The files this image is made of (itself, extents, backing files), for overwrite protection. */
  files(): string[];
  close(): Promise<void>;
}

export interface ImageWriter {
  /** Blocks arrive in increasing offset order; `data` may be reused by the caller after the promise settles. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** A run that must read as zeros; the writer leaves it unallocated where the format allows. */
  writeZeroes(offset: number, length: number): Promise<void>;
  /**
   * A run this image leaves to what lies beneath it: unallocated, so it reads from the backing
   * file (convert -B writes only what differs from the backing image). Only writers that can
   * have a backing file implement it; over a backing file, writeZeroes must store zeros instead.
   */
  leave?(offset: number, length: number): Promise<void>;
  /** Writes the remaining metadata; after it resolves, the sink holds a complete image. */
  finish(): Promise<void>;
  /** Gives up; the caller discards the sink. */
  abort(): Promise<void>;
  /**
   * Preferred block size: the engine aligns the blocks it hands over to this (a cluster, a grain),
   * so a writer never has to merge partial units. A multiple of 512.
   */
  readonly blockSize?: number;
  /**
   * How many calls (write, writeZeroes, leave) may be in flight at once. Default 1: the engine
   * waits for each call before the next. Above 1 it makes the next call before earlier ones
   * settle; calls are still made in increasing offset order, and a writer that allocates in that
   * order takes them one after the other through WriteBehind. Completion may come in any order.
   */
  readonly parallelWrites?: number;
}

export interface Capabilities {
  read: boolean;
  write: boolean;
  /** Can be read in one forward pass from a pipe. */
  streamRead: boolean;
  /** Can be written in one forward pass to a pipe (given the source's allocation map). */
  streamWrite: boolean;
  compression: boolean;
  backing: boolean;
}

export interface ProbeInput {
  /** The first bytes of the file (at least 512 when the file is that long). */
  head: Uint8Array;
  /** The last bytes of the file (at least 512 when the file is that long); empty for a pipe. */
  tail: Uint8Array;
  /** File size, or undefined for a pipe. */
  size: number | undefined;
}

export interface ProbeResult {
  /** 100 for a certain magic, 1 for raw. */
  score: number;
  subformat?: string;
}

/** Where a reader may open the other files its image names (backing files, extents, parents). */
export interface OpenContext {
  /** Display name of the file being opened. */
  file: string;
  /** Filesystem path of the file, when it is one (absent for pipes and buffers). */
  path?: string;
  /** Allow backing, parent and extent paths outside the image's folder. */
  allowOutside: boolean;
  /** Open backing files at all (qemu-img's -U / no-backing for info). */
  openBacking: boolean;
  /** Threads that may inflate compressed clusters, the main thread included (qemu-img -m); default: every core. */
  parallelism?: number;
  /** How deep in a backing chain this image sits; capped by MAX_CHAIN_DEPTH. */
  depth: number;
  /** Canonical paths of the images above this one, to refuse loops. */
  chain: string[];
  /** Opens another image (backing/parent) through the registry, with the same policy. */
  openImage(path: string, format: string | undefined, ctx: OpenContext): Promise<ImageReader>;
}

export interface CreateSpec {
  virtualSize: number;
  /** Parsed by the driver's schema. */
  options: Record<string, unknown>;
  /** Compress data (qcow2 -c, streamOptimized grains). */
  compress?: boolean;
  /** Parallel compression jobs. */
  parallelism?: number;
  /** Path of the output, when it is a file (flat extents, split files are named after it). */
  path?: string;
  /** Display name. */
  file: string;
  /**
   * The source's allocation map, when known in advance: lets one-pass writers plan their metadata
   * before the first block (a pipe target cannot be rewound). Iterable more than once.
   */
  allocation?: () => AsyncIterable<Extent>;
  /** Create extra files next to `path` (split extents), through the same atomic mechanism. */
  openSideFile?: (path: string) => Promise<ByteSink>;
}

/** Result of a consistency check, with qemu-img check's JSON field names. */
export interface CheckResult {
  filename: string;
  format: string;
  /** Problems that make data wrong or unsafe to write (qemu-img: "corruptions"). */
  corruptions: number;
  /** Space marked used but referenced by nothing (qemu-img: "leaks"). */
  leaks: number;
  /** Internal failures while checking (qemu-img: "check-errors"). */
  checkErrors: number;
  /** One line per problem, qemu-img's wording where it has one. */
  messages: string[];
  imageEndOffset?: number;
  totalClusters?: number;
  allocatedClusters?: number;
  fragmentedClusters?: number;
  compressedClusters?: number;
}

/** An absolute virtual size, or a change of the current one (qemu-img resize IMAGE [+|-]SIZE). */
export type ResizeTarget = { size: number } | { delta: number };

export interface ResizeOptions {
  /** Allow the image to become smaller (qemu-img --shrink); data past the new end is lost. */
  shrink: boolean;
  /**
   * The image's name in messages (ctx.file) and the policy open() gets (path confinement, chain limits). A resize never changes a backing
   * file; qcow2 only reads its backing image's size, to know whether growing would uncover it.
   */
  ctx: OpenContext;
}

export interface ResizeResult {
  format: string;
  /** Virtual size before, as the format reads it. */
  oldSize: number;
  /** Virtual size after, as the format reads it (the request after the format's rounding). */
  newSize: number;
}

/** Writing into an existing file or device of this format, in place (convert -n). */
export interface InPlaceSpec {
  /** The target's size, which it keeps. */
  size: number;
  /** The target read back, to find which zero runs already read as zeros. */
  target: ByteSource;
  /** The caller vouches that the target reads as zeros (--target-is-zero): zero runs are skipped. */
  isZero: boolean;
}

export interface FormatDriver {
  readonly name: string;
  /** The name qemu-img knows the format by, when it differs (VHD is "vpc"); accepted by byName(). */
  readonly qemuName?: string;
  readonly aliases?: readonly string[];
  /**
   * The catch-all (raw): its probe claims any bytes, so detecting it means "no format recognised",
   * and it is the output format when nothing names one. Exactly one registered driver sets it.
   */
  readonly fallback?: boolean;
  readonly description: string;
  readonly extensions: readonly string[];
  readonly capabilities: Capabilities;
  readonly optionsSchema?: z.ZodType<Record<string, unknown>>;
  /** Never throws; returns null when the bytes are not this format. */
  probe(input: ProbeInput): ProbeResult | null;
  /**
   * Whether the image its probe describes (by subformat) can be read in one pass from a pipe, where
   * that differs by subformat; default capabilities.streamRead. Others are spooled to a file first.
   */
  streamReadable?(probe: ProbeResult): boolean;
  /**
   * A second look for formats whose subformat lies beyond the probe's head and tail (VHDX keeps
   * it in a metadata region megabytes in): reads what it needs from a seekable source. Errors
   * leave the probe's answer as it was.
   */
  refineProbe?(source: ByteSource, probe: ProbeResult): Promise<ProbeResult>;
  open?(source: ByteSource, ctx: OpenContext): Promise<ImageReader>;
  create?(sink: ByteSink, spec: CreateSpec): Promise<ImageWriter>;
  /**
   * The create options that make a new image laid out like the one described (cluster size,
   * version, subformat…), for convert -n into an existing image of this format.
   */
  recreateOptions?(info: FormatInfo): Record<string, unknown>;
  /** Checks metadata consistency (formats that have metadata to check). */
  check?(source: ByteSource, ctx: OpenContext): Promise<CheckResult>;
  /**
   * A writer into an existing target of this format that keeps its length and layout and writes
   * the source at the same offsets (convert -n into a file or a block device). Formats without it
   * are rewritten whole as a new image with the target's layout (recreateOptions).
   */
  writeInPlace?(sink: ByteSink, spec: InPlaceSpec): ImageWriter;
  /** Changes the virtual size of the image file at `path` in place (qemu-img resize); never touches a backing file. */
  resize?(path: string, target: ResizeTarget, opts: ResizeOptions): Promise<ResizeResult>;
}
