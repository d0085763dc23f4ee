/**
 * Runs a plan: validate it whole (`checkedPlan`), settle the run's settings (`runSettings`),
 * then work through its disks with at most `concurrency` in flight (`runDisk`, in
 * disk-run.ts), and report the summary. A disk that fails for good is reported and left behind
 * while the others go on. Finished disks (and committed conversions) are recorded in the resume
 * state, so a run that is interrupted and started again with `resume` picks up where it stopped.
 *
 * Memory is bounded by the concurrency, not by the plan: disks are read from the plan as workers
 * take them, finished disks leave only counts (and the first MAX_LISTED_FAILURES failures).
 */
import { availableParallelism } from 'node:os';
import { UsageError } from '../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../stream/retry.js';
import { runDisk, StateWriteFailure, type DiskRunContext } from './disk-run.js';
import { PlanError } from './errors.js';
import { stamp, type PipelineEvent, type PipelineEventInput, type PipelineSummary } from './events.js';
import { planDisks, validatePlan, type PlanSummary } from './plan.js';
import type { PlanSource } from './plan-source.js';
import { forEachLimited } from './pool.js';
import { MAX_CONCURRENCY } from './schema.js';
import { defaultOperations, type StageOperations } from './stages.js';
import { ResumeState, type ResumeCheck } from './state.js';
import { Tally } from './tally.js';

export { errorReport } from './error-report.js';

export interface RunOptions {
  /** Disks in flight at once; overrides the plan's `concurrency`. */
  concurrency?: number;
  /** Skip disks that an earlier run finished and whose outputs are unchanged. */
  resume?: boolean;
  /** Replace existing outputs and copies for every disk, as `"force": true` does for one. */
  force?: boolean;
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

/** The plan, validated; a broken plan is reported as a plan-invalid event and thrown. */
export async function checkedPlan(source: PlanSource, emit: (e: PipelineEventInput) => void): Promise<PlanSummary> {
  try {
    return await validatePlan(source);
  } catch (e) {
    if (e instanceof PlanError) emit({ type: 'plan-invalid', ...(source.file ? { plan: source.file } : {}), issues: e.issues, total: e.total });
    throw e;
  }
}

/** Concurrency and retry policy from the options over the plan's header over the defaults. */
export function runSettings(plan: PlanSummary, opts: RunOptions): { concurrency: number; policy: RetryPolicy } {
  const concurrency = opts.concurrency ?? plan.header.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new UsageError(`concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, not ${concurrency}`);
  }
  if (opts.resume && !opts.statePath) throw new UsageError('resuming needs a state file (statePath)');
  return { concurrency, policy: { ...DEFAULT_RETRY, ...plan.header.retry, ...opts.retryTiming } };
}

export async function runPlan(source: PlanSource, opts: RunOptions = {}): Promise<PipelineSummary> {
  const started = performance.now();
  const emit = (e: PipelineEventInput) => opts.onEvent?.(stamp(e));
  const plan = await checkedPlan(source, emit);
  const { concurrency, policy } = runSettings(plan, opts);
  const state = opts.statePath ? await ResumeState.open(opts.statePath) : undefined;
  const tally = new Tally();
  const ctx: DiskRunContext = {
    ops: { ...defaultOperations, ...opts.operations },
    policy,
    emit,
    tally,
    state,
    resume: Boolean(opts.resume),
    resumeCheck: opts.resumeCheck ?? 'quick',
    signal: opts.signal,
    progressIntervalMs: opts.progressIntervalMs ?? 250,
    knownFolders: new Set(),
  };

  emit({
    type: 'plan-started',
    ...(source.file ? { plan: source.file } : {}),
    disks: plan.diskCount,
    concurrency,
    resume: ctx.resume,
    ...(state ? { state: state.path } : {}),
  });
  const disks = planDisks(source, plan.header);
  try {
    await forEachLimited(disks, concurrency, (disk) => runDisk(opts.force ? { ...disk, force: true } : disk, ctx), opts.signal);
  } catch (e) {
    throw e instanceof StateWriteFailure ? e.cause : e;
  } finally {
    await state?.close();
  }
  const summary = tally.summary(plan.diskCount, (performance.now() - started) / 1000, Boolean(opts.signal?.aborted));
  opts.onEvent?.(summary);
  return summary;
}
