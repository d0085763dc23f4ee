/**
 * What a running pipeline reports, one object per event. `--events json` prints each as a JSON
 * line; the human view draws them. Field names are part of the interface: scripts parse them.
 */
import type { StageName } from './schema.js';
import type { PlanIssue } from './errors.js';

export interface ErrorReport {
  /** The system's errno for I/O failures (ENOENT, EACCES, ENOSPC, …), else the GuestkitError code (ECORRUPT, EVERIFY, …). */
  code: string;
  /** The error's class, stable across releases: IoError, CorruptImageError, VerificationError, … */
  error: string;
  /** At most MAX_REPORTED_MESSAGE characters. */
  message: string;
  file?: string;
  field?: string;
  offset?: number;
}

interface Base {
  time: string;
}

export type PipelineEvent = Base &
  (
    | { type: 'plan-started'; plan?: string; disks: number; concurrency: number; resume: boolean; state?: string }
    | { type: 'plan-invalid'; plan?: string; issues: PlanIssue[]; total: number }
    | { type: 'disk-started'; disk: string; index: number; source: string; output?: string }
    | { type: 'disk-skipped'; disk: string; index: number; reason: string }
    | { type: 'stage-started'; disk: string; stage: StageName; step: number }
    | { type: 'progress'; disk: string; stage: StageName; done: number; total: number }
    | { type: 'retry'; disk: string; stage: StageName; attempt: number; delayMs: number; error: ErrorReport }
    | { type: 'stage-done'; disk: string; stage: StageName; step: number; seconds: number; result: Record<string, unknown>; skipped?: string }
    | { type: 'disk-failed'; disk: string; index: number; stage: StageName; attempts: number; error: ErrorReport }
    | { type: 'disk-finished'; disk: string; index: number; seconds: number; output?: string; sha256?: string; copies?: string[] }
    | { type: 'summary'; total: number; succeeded: number; failed: number; skipped: number; seconds: number; failures: FailureReport[]; unlisted?: number; aborted?: boolean }
  );

/**
 * One failed disk in the summary. The summary lists at most MAX_LISTED_FAILURES of them (the
 * first to fail), and counts the rest in `unlisted`: memory stays bounded for any plan size,
 * and every failure still has its own disk-failed event.
 */
export interface FailureReport {
  disk: string;
  index: number;
  stage: StageName;
  message: string;
}

type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type PipelineEventInput = Without<PipelineEvent, 'time'>;
export type PipelineSummary = Extract<PipelineEvent, { type: 'summary' }>;

export function stamp(e: PipelineEventInput): PipelineEvent {
  // `type` first, then `time`: the order a reader of the JSON lines scans them in.
  return Object.assign({ type: e.type, time: new Date().toISOString() }, e) as PipelineEvent;
}
