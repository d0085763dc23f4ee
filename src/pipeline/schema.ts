/**
 * The shape of a pipeline plan, as zod schemas. A plan is either a JSON document
 *
 *   { "concurrency": 4, "retry": {...}, "defaults": {...}, "disks": [ {...}, ... ] }
 *
 * (or a bare array of disks), or a JSON-lines file with one disk per line, optionally preceded
 * by a `{"settings": {...}}` line holding the same top-level fields. Schemas here check one
 * value at a time; rules that relate fields (convert needs an output, verify comes after
 * convert) live in resolve.ts, where defaults have been merged in.
 */
import * as z from 'zod';
import { DEFAULT_RETRY } from '../stream/retry.js';

export const STAGE_NAMES = ['detect', 'inspect-info', 'convert', 'verify', 'checksum', 'copy-to'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

const nonEmpty = z.string().min(1, 'must not be empty');
const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be a SHA-256 in hex (64 characters)')
  .transform((s) => s.toLowerCase());

export const stageSchema = z.preprocess(
  // A stage without parameters may be written as its name alone: "convert".
  (v) => (typeof v === 'string' ? { type: v } : v),
  z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('detect'),
      /** Fail unless the source is detected as this format. */
      expect: nonEmpty.optional(),
    }),
    z.strictObject({ type: z.literal('inspect-info') }),
    z.strictObject({ type: z.literal('convert') }),
    z.strictObject({
      type: z.literal('verify'),
      /** Sizes must match too (qemu-img compare -s). */
      strict: z.boolean().optional(),
    }),
    z.strictObject({
      type: z.literal('checksum'),
      /** Which image to hash; the output when the disk has one, else the source. */
      of: z.enum(['source', 'output']).optional(),
      /** Fail unless the virtual content hashes to this. */
      expect: sha256Hex.optional(),
    }),
    z.strictObject({
      type: z.literal('copy-to'),
      /** Folder the output (or, without an output, the source) is copied into. */
      dir: nonEmpty,
    }),
  ]),
);
export type Stage = z.output<typeof stageSchema>;

export const formatOptionsSchema = z.union([z.record(z.string(), z.unknown()), z.string()]);

/** Fields a disk may take from the plan's `defaults`. */
const inheritable = {
  /** Source format; detected from content when omitted. */
  sourceFormat: nonEmpty.optional(),
  /** Output format; from the output's extension when omitted, else raw. */
  format: nonEmpty.optional(),
  compress: z.boolean().optional(),
  /** Output format options: an object or qemu-img's `k=v,k=v` string. */
  options: formatOptionsSchema.optional(),
  /** Replace an existing output or copy. */
  force: z.boolean().optional(),
  stages: z.array(stageSchema).min(1, 'needs at least one stage').optional(),
};

export const defaultsSchema = z.strictObject(inheritable);
export type DiskDefaults = z.output<typeof defaultsSchema>;

export const diskSchema = z.strictObject({
  /** Name in events, summary and resume state; defaults to the output, else the source. */
  id: nonEmpty.optional(),
  source: nonEmpty,
  output: nonEmpty.optional(),
  ...inheritable,
});
export type DiskEntry = z.output<typeof diskSchema>;

export const retrySchema = z
  .strictObject({
    /** Total tries of a stage, the first included. */
    attempts: z.number().int().min(1).max(100).default(DEFAULT_RETRY.attempts),
    baseDelayMs: z.number().int().min(0).max(600_000).default(DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_RETRY.maxDelayMs),
  })
  .refine((r) => r.maxDelayMs >= r.baseDelayMs, { message: 'maxDelayMs must not be below baseDelayMs', path: ['maxDelayMs'] });
export type PlanRetry = z.output<typeof retrySchema>;

export const MAX_CONCURRENCY = 64;

/** Everything in a plan but its disks. */
export const headerSchema = z.strictObject({
  version: z.literal(1).optional(),
  concurrency: z.number().int().min(1).max(MAX_CONCURRENCY).optional(),
  retry: retrySchema.optional(),
  defaults: defaultsSchema.optional(),
});
export type PlanHeader = z.output<typeof headerSchema>;

/** A whole plan held in memory (the library's `runPipeline(plan)`). */
export type PipelinePlan = z.input<typeof headerSchema> & { disks: unknown[] };
