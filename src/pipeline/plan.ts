/**
 * Validation and iteration of a plan. `validatePlan` reads the whole plan once, streaming,
 * and reports every problem it finds with the field's path; only then does the runner start,
 * reading the plan a second time with `planDisks`. Reading twice costs milliseconds per
 * thousand disks and buys two things: header fields may follow the disks in the file, and no
 * disk is converted from a plan that turns out to be broken further down.
 */
import { PlanError, type PlanIssue } from './errors.js';
import { PlanRelations, type IssueSink } from './plan-relations.js';
import { defaultsSchema, headerSchema, type DiskDefaults, type PlanHeader } from './schema.js';
import { resolveDisk, type ResolvedDisk } from './resolve.js';
import type { PlanSource } from './plan-source.js';
import { issuesFromZod } from './zod-issues.js';

/** Problems kept for the message; the rest are only counted. */
const KEPT_ISSUES = 50;

/** The plan's top-level fields, unchecked; throws a PlanError only when the file is not JSON. */
async function scanHeader(source: PlanSource): Promise<Record<string, unknown>> {
  const raw: Record<string, unknown> = {};
  for await (const item of source.items()) {
    if (item.kind === 'header') raw[item.key] = item.value;
    else if (source.headerFirst) break;
  }
  return raw;
}

export async function readPlanHeader(source: PlanSource): Promise<PlanHeader> {
  const raw = await scanHeader(source);
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) throw new PlanError(source.file, issuesFromZod(parsed.error, raw, []));
  return parsed.data;
}

export { copyDestination } from './copy-destination.js';

export interface PlanSummary {
  header: PlanHeader;
  diskCount: number;
}

class IssueList {
  readonly kept: PlanIssue[] = [];
  total = 0;
  add(...issues: PlanIssue[]): void {
    for (const i of issues) {
      this.total++;
      if (this.kept.length < KEPT_ISSUES) this.kept.push(i);
    }
  }
}

export interface ValidateOptions {
  /** Also check the machine: sources exist and can be read, output folders can be written. */
  files?: boolean;
}

/**
 * Checks every disk, and the relations between them (plan-relations.ts). Disk entries are
 * dropped as soon as they are checked; what is kept per disk is a few compact digests, so the
 * memory this needs is tens of bytes a disk, not the plan's size.
 */
export async function validatePlan(source: PlanSource, opts: ValidateOptions = {}): Promise<PlanSummary> {
  const issues = new IssueList();
  const raw = await scanHeader(source);
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) issues.add(...issuesFromZod(parsed.error, raw, []));
  const header: PlanHeader = parsed.success ? parsed.data : {};
  // Disks are checked against the defaults even when another header field is wrong; with
  // broken defaults every disk would look broken too, so the defaults are reported alone.
  const defaultsParsed = parsed.success ? undefined : defaultsSchema.safeParse(raw.defaults ?? {});
  const defaultsOk = parsed.success || Boolean(defaultsParsed?.success);
  const defaults: DiskDefaults = parsed.success ? (parsed.data.defaults ?? {}) : defaultsParsed?.success ? defaultsParsed.data : {};
  const relations = new PlanRelations(opts);
  const relationIssue: IssueSink = (index, field, message, line) =>
    issues.add({ path: `disks[${index}]${field}`, message, ...(line !== undefined ? { line } : {}) });
  let diskCount = 0;
  try {
    for await (const item of source.items()) {
      if (item.kind === 'invalid') {
        diskCount++;
        issues.add(item.issue);
        continue;
      }
      if (item.kind !== 'disk') continue;
      diskCount++;
      if (!defaultsOk) continue;
      const r = resolveDisk(item.value, defaults, { index: item.index, line: item.line, baseDir: source.baseDir });
      if (!r.ok) issues.add(...r.issues);
      else relations.check(r.disk, relationIssue);
    }
  } catch (e) {
    // Not JSON past some point: nothing after it can be read, but what was found before stands.
    if (!(e instanceof PlanError)) throw e;
    issues.add(...e.issues);
  }
  if (diskCount === 0 && issues.total === 0) issues.add({ path: 'disks', message: 'the plan has no disks' });
  if (issues.total) throw new PlanError(source.file, issues.kept, issues.total);
  return { header, diskCount };
}

/** The plan's disks, resolved, in order. A plan already checked by validatePlan yields no error. */
export async function* planDisks(source: PlanSource, header: PlanHeader): AsyncGenerator<ResolvedDisk> {
  for await (const item of source.items()) {
    // The file changed since it was validated: stop rather than run a disk nobody checked.
    if (item.kind === 'invalid') throw new PlanError(source.file, [item.issue]);
    if (item.kind !== 'disk') continue;
    const r = resolveDisk(item.value, header.defaults ?? {}, { index: item.index, line: item.line, baseDir: source.baseDir });
    // The file changed since it was validated: stop rather than run a disk nobody checked.
    if (!r.ok) throw new PlanError(source.file, r.issues);
    yield r.disk;
  }
}
