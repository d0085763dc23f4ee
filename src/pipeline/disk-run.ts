/**
 * One disk of a run, as named steps: find what an earlier run left (`earlierRecord`), run each
 * stage with the plan's retries (`runStageWithRetry`), record progress in the resume state
 * (`recordConverted`, `recordDone`), and report the outcome. Whatever goes wrong inside a disk
 * fails that disk alone; only a failure to write the resume state (`StateWriteFailure`) is
 * meant to stop the run, since resuming from a state that silently lost records would redo or
 * skip the wrong disks.
 */
import { AbortedError } from '../errors.js';
import type { RetryPolicy } from '../stream/retry.js';
import { imageFiles } from './copy-files.js';
import { errorReport } from './error-report.js';
import type { PipelineEventInput } from './events.js';
import type { ResolvedDisk } from './resolve.js';
import type { StageName } from './schema.js';
import { runStage, type StageOperations } from './stages.js';
import { retryStage } from './stage-retry.js';
import { diskFingerprint, filesUnchanged, proveFiles, type ResumeCheck, type ResumeState, type StateRecord } from './state.js';
import type { Tally } from './tally.js';

export interface DiskRunContext {
  ops: StageOperations;
  policy: RetryPolicy;
  emit: (e: PipelineEventInput) => void;
  tally: Tally;
  state?: ResumeState;
  resume: boolean;
  resumeCheck: ResumeCheck;
  signal?: AbortSignal;
  progressIntervalMs: number;
  /** Output folders made sure of in this run (shared by its disks). */
  knownFolders?: Set<string>;
}

/** The resume state could not be written: the run stops (see the module comment). */
export class StateWriteFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('resume state could not be written');
  }
}

/** A stage that failed for good, with the tries it took. */
class StageFailure extends Error {
  constructor(
    readonly stage: StageName,
    readonly attempts: number,
    override readonly cause: unknown,
  ) {
    super('stage failed');
  }
}

/** What the stages of one disk produced, for the disk-finished event and the resume state. */
interface DiskOutcome {
  sha256?: string;
  checksumOf?: string;
  copies: string[];
}

/** Throttled progress for one disk: at most one event per interval. */
export function progressReporter(emit: (e: PipelineEventInput) => void, disk: string, intervalMs: number) {
  let last = 0;
  return (stage: StageName) => (done: number, total: number) => {
    const now = performance.now();
    if (now - last < intervalMs) return;
    last = now;
    emit({ type: 'progress', disk, stage, done, total });
  };
}

/** An earlier run's record for this disk that still holds (its files unchanged), if any. */
export async function earlierRecord(disk: ResolvedDisk, ctx: DiskRunContext): Promise<StateRecord | undefined> {
  const rec = ctx.resume ? await ctx.state?.lookup(disk) : undefined;
  if (!rec || !(await filesUnchanged(rec.files))) return undefined;
  if (ctx.resumeCheck !== 'checksum' || !rec.sha256 || !rec.checksumOf) return rec;
  const format = rec.checksumOf === disk.output ? disk.format : disk.sourceFormat;
  const sha = await ctx.ops.checksum(rec.checksumOf, { format }).catch(() => undefined);
  return sha === rec.sha256 ? rec : undefined;
}

/** Runs stage `step` of the disk, retrying transient failures; throws a StageFailure. */
export async function runStageWithRetry(disk: ResolvedDisk, step: number, ctx: DiskRunContext, progress: (done: number, total: number) => void): Promise<Record<string, unknown>> {
  const stage = disk.stages[step];
  let attempts = 1;
  try {
    if (ctx.signal?.aborted) throw new AbortedError('pipeline cancelled');
    return await retryStage(
      (attempt) => {
        attempts = attempt;
        return runStage(stage, { disk, ops: ctx.ops, signal: ctx.signal, progress, knownFolders: ctx.knownFolders });
      },
      ctx.policy,
      {
        signal: ctx.signal,
        onRetry: (attempt, delayMs, error) => ctx.emit({ type: 'retry', disk: disk.id, stage: stage.type, attempt, delayMs, error: errorReport(error) }),
      },
    );
  } catch (e) {
    throw new StageFailure(stage.type, attempts, e);
  }
}

/** The files a disk produced (or, without an output, its source) with their sizes and times. */
async function proofOf(disk: ResolvedDisk, copies: string[]) {
  const made = disk.output ? await imageFiles(disk.output, disk.format) : [disk.source];
  return proveFiles([...made, ...copies]);
}

async function record(ctx: DiskRunContext, rec: StateRecord): Promise<void> {
  try {
    await ctx.state?.record(rec);
  } catch (e) {
    throw new StateWriteFailure(e);
  }
}

/** Recorded at once: if the run stops during verify, the next one need not convert again. */
export async function recordConverted(disk: ResolvedDisk, ctx: DiskRunContext): Promise<void> {
  if (!ctx.state) return;
  const files = await proofOf(disk, []);
  await record(ctx, { disk: disk.id, fp: diskFingerprint(disk), status: 'converted', files, at: new Date().toISOString() });
}

export async function recordDone(disk: ResolvedDisk, outcome: DiskOutcome, ctx: DiskRunContext): Promise<void> {
  if (!ctx.state) return;
  const files = await proofOf(disk, outcome.copies);
  const sum = outcome.sha256 ? { sha256: outcome.sha256, checksumOf: outcome.checksumOf } : {};
  await record(ctx, { disk: disk.id, fp: diskFingerprint(disk), status: 'done', files, ...sum, at: new Date().toISOString() });
}

function absorb(disk: ResolvedDisk, outcome: DiskOutcome, stage: StageName, result: Record<string, unknown>): void {
  if (stage === 'checksum') {
    outcome.sha256 = result.sha256 as string;
    outcome.checksumOf = result.of === 'source' ? disk.source : disk.output;
  }
  if (stage === 'copy-to') outcome.copies.push(...(result.files as string[]));
}

export function failDisk(disk: ResolvedDisk, stage: StageName, attempts: number, e: unknown, ctx: DiskRunContext): void {
  const error = errorReport(e);
  ctx.tally.fail({ disk: disk.id, index: disk.index, stage, message: error.message });
  ctx.emit({ type: 'disk-failed', disk: disk.id, index: disk.index, stage, attempts, error });
}

/** Runs every stage of one disk; never throws for the disk's own failures. */
export async function runDisk(disk: ResolvedDisk, ctx: DiskRunContext): Promise<void> {
  // The stage a failure outside any stage (an output vanished before it was recorded) is
  // charged to: the last one that ran.
  let current: StageName = disk.stages[0].type;
  try {
    const earlier = await earlierRecord(disk, ctx);
    if (earlier?.status === 'done') {
      ctx.tally.skipped++;
      ctx.emit({ type: 'disk-skipped', disk: disk.id, index: disk.index, reason: 'finished by an earlier run; its outputs are unchanged' });
      return;
    }
    const t0 = performance.now();
    ctx.emit({ type: 'disk-started', disk: disk.id, index: disk.index, source: disk.source, ...(disk.output ? { output: disk.output } : {}) });
    const progress = progressReporter(ctx.emit, disk.id, ctx.progressIntervalMs);
    const outcome: DiskOutcome = { copies: [] };
    for (let step = 0; step < disk.stages.length; step++) {
      const stage = (current = disk.stages[step].type);
      if (stage === 'convert' && earlier?.status === 'converted') {
        ctx.emit({ type: 'stage-done', disk: disk.id, stage, step, seconds: 0, result: { output: disk.output }, skipped: 'converted by an earlier run; the output is unchanged' });
        continue;
      }
      ctx.emit({ type: 'stage-started', disk: disk.id, stage, step });
      const s0 = performance.now();
      const result = await runStageWithRetry(disk, step, ctx, progress(stage));
      ctx.emit({ type: 'stage-done', disk: disk.id, stage, step, seconds: (performance.now() - s0) / 1000, result });
      absorb(disk, outcome, stage, result);
      if (stage === 'convert') await recordConverted(disk, ctx);
    }
    await recordDone(disk, outcome, ctx);
    ctx.tally.succeeded++;
    ctx.emit({
      type: 'disk-finished',
      disk: disk.id,
      index: disk.index,
      seconds: (performance.now() - t0) / 1000,
      ...(disk.output ? { output: disk.output } : {}),
      ...(outcome.sha256 ? { sha256: outcome.sha256 } : {}),
      ...(outcome.copies.length ? { copies: outcome.copies } : {}),
    });
  } catch (e) {
    if (e instanceof StateWriteFailure) throw e;
    if (e instanceof StageFailure) failDisk(disk, e.stage, e.attempts, e.cause, ctx);
    else failDisk(disk, current, 1, e, ctx);
  }
}
