/**
 * The library's pipeline entry points. A plan is a path (JSON document, or JSON lines when it
 * ends in .jsonl/.ndjson; read incrementally) or an object already in memory; relative paths in
 * a plan file are taken from the plan's folder, in an object from `baseDir` (default: cwd).
 */
import { PlanError } from '../pipeline/errors.js';
import { planFromFile, planFromObject, type PlanSource } from '../pipeline/plan-source.js';
import { validatePlan } from '../pipeline/plan.js';
import { runPlan, type RunOptions } from '../pipeline/runner.js';
import type { PipelineSummary } from '../pipeline/events.js';
import type { PipelinePlan } from '../pipeline/schema.js';

export type { PipelineEvent, PipelineSummary, FailureReport, ErrorReport } from '../pipeline/events.js';
export type { PipelinePlan, Stage, StageName } from '../pipeline/schema.js';
export type { PlanIssue } from '../pipeline/errors.js';
export { PlanError, VerificationError, OutputExistsError } from '../pipeline/errors.js';

export interface RunPipelineOptions extends RunOptions {
  /** Folder relative paths of an in-memory plan are taken from. */
  baseDir?: string;
  /**
   * Resume state file. For a plan file it defaults to `<plan>.state.jsonl` beside it; `false`
   * keeps no state. An in-memory plan keeps state only when given a path.
   */
  statePath?: string;
  state?: false;
}

/** The state file a plan file keeps by default. */
export function defaultStatePath(planPath: string): string {
  return `${planPath}.state.jsonl`;
}

function sourceOf(plan: PipelinePlan | unknown[] | string, baseDir?: string): PlanSource {
  return typeof plan === 'string' ? planFromFile(plan) : planFromObject(plan, baseDir);
}

/**
 * Runs every disk of the plan; resolves with the summary (which lists the failed disks) and
 * rejects only when the plan itself is invalid (PlanError, naming each bad field) or the run
 * cannot proceed (state file locked or unwritable).
 */
export async function runPipeline(plan: PipelinePlan | unknown[] | string, options: RunPipelineOptions = {}): Promise<PipelineSummary> {
  const source = sourceOf(plan, options.baseDir);
  const statePath = options.state === false ? undefined : (options.statePath ?? (source.file ? defaultStatePath(source.file) : undefined));
  return runPlan(source, { ...options, statePath });
}

/**
 * Checks a plan without running it; resolves with its disk count, rejects with a PlanError
 * naming every problem: bad fields, two disks writing one file (however the paths are spelt),
 * a disk reading what another writes, and (unless `files: false`) sources that are missing or
 * unreadable and output folders that cannot be written.
 */
export async function validatePipelinePlan(plan: PipelinePlan | unknown[] | string, options: { baseDir?: string; files?: boolean } = {}): Promise<{ disks: number }> {
  const { diskCount } = await validatePlan(sourceOf(plan, options.baseDir), { files: options.files ?? true });
  return { disks: diskCount };
}

export function isPlanError(e: unknown): e is PlanError {
  return e instanceof PlanError;
}
