/**
 * Runs a plan: validate it whole, then work through its disks with at most `concurrency` in
 * flight. Each disk runs its stages in order; a stage that fails transiently is retried with
 * the plan's backoff, and a disk that fails for good is reported and left behind while the
 * others go on. Finished disks (and committed conversions) are recorded in the resume state,
 * so a run that is interrupted and started again with `resume` picks up where it stopped.
 */
import { availableParallelism } from 'node:os';
import { GuestkitError, UsageError, AbortedError } from '../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../stream/retry.js';
import { imageFiles } from './copy-files.js';
import { PlanError } from './errors.js';
import { stamp, type ErrorReport, type FailureReport, type PipelineEvent, type PipelineEventInput, type PipelineSummary } from './events.js';
import { planDisks, validatePlan } from './plan.js';
import type { PlanSource } from './plan-source.js';
import { forEachLimited } from './pool.js';
import type { ResolvedDisk } from './resolve.js';
import { MAX_CONCURRENCY, type StageName } from './schema.js';
import { defaultOperations, runStage, type StageOperations } from './stages.js';
import { retryStage } from './stage-retry.js';
import { diskFingerprint, filesUnchanged, proveFiles, ResumeState, type ResumeCheck, type StateRecord } from './state.js';

export interface RunOptions {
  /** Disks in flight at once; overrides the plan's `concurrency`. */
  concurrency?: number;
  /** Skip disks that an earlier run finished and whose outputs are unchanged. */
  resume?: boolean;
  /** Resume state file; without one nothing is recorded and `resume` is refused. */
  statePath?: string;
  /** How finished outputs are re-checked on resume: size and mtime (quick) or also their SHA-256. */
  resumeCheck?: ResumeCheck;
  onEvent?: (e: PipelineEvent) => void;
  signal?: AbortSignal;
  /** Replaces stage operations (fault injection in tests, instrumentation in embedders). */
  operations?: Partial<StageOperations>;
  /** Replaces the retry policy's sleep and random source (tests). */
  retryTiming?: Pick<RetryPolicy, 'sleep' | 'random'>;
  /** Least time between two progress events of one disk. */
  progressIntervalMs?: number;
}

export const DEFAULT_CONCURRENCY = Math.max(1, Math.min(4, availableParallelism()));

export function errorReport(e: unknown): ErrorReport {
  if (e instanceof GuestkitError) {
    return {
      code: e.code,
      message: e.message,
      ...(e.file !== undefined ? { file: e.file } : {}),
      ...(e.field !== undefined ? { field: e.field } : {}),
      ...(e.offset !== undefined ? { offset: e.offset } : {}),
    };
  }
  const err = e as { code?: unknown; message?: unknown } | undefined;
  return { code: typeof err?.code === 'string' ? err.code : 'EINTERNAL', message: typeof err?.message === 'string' ? err.message : String(e) };
}

/** Throttled progress for one disk: at most one event per interval. */
function progressReporter(emit: (e: PipelineEventInput) => void, disk: string, intervalMs: number) {
  let last = 0;
  return (stage: StageName) => (done: number, total: number) => {
    const now = performance.now();
    if (now - last < intervalMs) return;
    last = now;
    emit({ type: 'progress', disk, stage, done, total });
  };
}

export async function runPlan(source: PlanSource, opts: RunOptions = {}): Promise<PipelineSummary> {
  const started = performance.now();
  const emit = (e: PipelineEventInput) => opts.onEvent?.(stamp(e));
  const ops: StageOperations = { ...defaultOperations, ...opts.operations };

  let plan;
  try {
    plan = await validatePlan(source);
  } catch (e) {
    if (e instanceof PlanError) emit({ type: 'plan-invalid', ...(source.file ? { plan: source.file } : {}), issues: e.issues, total: e.total });
    throw e;
  }
  const concurrency = opts.concurrency ?? plan.header.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new UsageError(`concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, not ${concurrency}`);
  }
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...plan.header.retry, ...opts.retryTiming };
  if (opts.resume && !opts.statePath) throw new UsageError('resuming needs a state file (statePath)');
  const state = opts.statePath ? await ResumeState.open(opts.statePath) : undefined;

  let succeeded = 0;
  let skipped = 0;
  const failures: FailureReport[] = [];

  /** Whether an earlier run's record still stands for this disk. */
  const recordHolds = async (rec: StateRecord, disk: ResolvedDisk): Promise<boolean> => {
    if (!(await filesUnchanged(rec.files))) return false;
    if (opts.resumeCheck !== 'checksum' || !rec.sha256 || !rec.checksumOf) return true;
    const format = rec.checksumOf === disk.output ? disk.format : disk.sourceFormat;
    return (await ops.checksum(rec.checksumOf, { format }).catch(() => undefined)) === rec.sha256;
  };

  const fail = (disk: ResolvedDisk, stage: StageName, attempts: number, e: unknown) => {
    const error = errorReport(e);
    failures.push({ disk: disk.id, index: disk.index, stage, message: error.message });
    emit({ type: 'disk-failed', disk: disk.id, index: disk.index, stage, attempts, error });
  };

  /**
   * Sizes and times of the files a disk produced (or, without an output, of its source), for
   * the resume state. A file that vanished right after its stage fails the disk; an error
   * writing the state itself is left to stop the run, since resuming would silently break.
   */
  const proofOf = async (disk: ResolvedDisk, copies: string[], stage: StageName) => {
    try {
      const made = disk.output ? await imageFiles(disk.output, disk.format) : [disk.source];
      return await proveFiles([...made, ...copies]);
    } catch (e) {
      fail(disk, stage, 1, e);
      return undefined;
    }
  };

  const runDisk = async (disk: ResolvedDisk): Promise<void> => {
    const fp = diskFingerprint(disk);
    const rec = opts.resume ? state?.lookup(disk) : undefined;
    const earlier = rec && (await recordHolds(rec, disk)) ? rec : undefined;
    if (earlier?.status === 'done') {
      skipped++;
      emit({ type: 'disk-skipped', disk: disk.id, index: disk.index, reason: 'finished by an earlier run; its outputs are unchanged' });
      return;
    }
    const t0 = performance.now();
    emit({ type: 'disk-started', disk: disk.id, index: disk.index, source: disk.source, ...(disk.output ? { output: disk.output } : {}) });
    const progress = progressReporter(emit, disk.id, opts.progressIntervalMs ?? 250);
    let sha256: string | undefined;
    let checksumOf: string | undefined;
    const copies: string[] = [];
    for (let step = 0; step < disk.stages.length; step++) {
      const stage = disk.stages[step];
      if (stage.type === 'convert' && earlier?.status === 'converted') {
        emit({ type: 'stage-done', disk: disk.id, stage: 'convert', step, seconds: 0, result: { output: disk.output }, skipped: 'converted by an earlier run; the output is unchanged' });
        continue;
      }
      emit({ type: 'stage-started', disk: disk.id, stage: stage.type, step });
      const s0 = performance.now();
      let attempts = 1;
      let result: Record<string, unknown>;
      try {
        if (opts.signal?.aborted) throw new AbortedError('pipeline cancelled');
        result = await retryStage(
          (attempt) => {
            attempts = attempt;
            return runStage(stage, { disk, ops, signal: opts.signal, progress: progress(stage.type) });
          },
          policy,
          {
            signal: opts.signal,
            onRetry: (attempt, delayMs, error) => emit({ type: 'retry', disk: disk.id, stage: stage.type, attempt, delayMs, error: errorReport(error) }),
          },
        );
      } catch (e) {
        fail(disk, stage.type, attempts, e);
        return;
      }
      emit({ type: 'stage-done', disk: disk.id, stage: stage.type, step, seconds: (performance.now() - s0) / 1000, result });
      if (stage.type === 'checksum') {
        sha256 = result.sha256 as string;
        checksumOf = result.of === 'source' ? disk.source : disk.output;
      }
      if (stage.type === 'copy-to') copies.push(...(result.files as string[]));
      if (stage.type === 'convert' && state) {
        // Recorded at once: if the run stops during verify, the next one need not convert again.
        const files = await proofOf(disk, [], stage.type);
        if (!files) return;
        await state.record({ disk: disk.id, fp, status: 'converted', files, at: new Date().toISOString() });
      }
    }
    if (state) {
      const files = await proofOf(disk, copies, disk.stages.at(-1)!.type);
      if (!files) return;
      await state.record({ disk: disk.id, fp, status: 'done', files, ...(sha256 ? { sha256, checksumOf } : {}), at: new Date().toISOString() });
    }
    succeeded++;
    emit({
      type: 'disk-finished',
      disk: disk.id,
      index: disk.index,
      seconds: (performance.now() - t0) / 1000,
      ...(disk.output ? { output: disk.output } : {}),
      ...(sha256 ? { sha256 } : {}),
      ...(copies.length ? { copies } : {}),
    });
  };

  emit({
    type: 'plan-started',
    ...(source.file ? { plan: source.file } : {}),
    disks: plan.diskCount,
    concurrency,
    resume: Boolean(opts.resume),
    ...(state ? { state: state.path } : {}),
  });
  try {
    await forEachLimited(planDisks(source, plan.header), concurrency, runDisk, opts.signal);
  } finally {
    await state?.close();
  }
  failures.sort((a, b) => a.index - b.index);
  const summary: PipelineSummary = stamp({
    type: 'summary',
    total: plan.diskCount,
    succeeded,
    failed: failures.length,
    skipped,
    seconds: (performance.now() - started) / 1000,
    failures,
    ...(opts.signal?.aborted ? { aborted: true } : {}),
  }) as PipelineSummary;
  opts.onEvent?.(summary);
  return summary;
}
