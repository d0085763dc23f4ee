/**
 * Plan errors name the field that is wrong, as a path a user can find in the plan
 * (`disks[3].stages[1]`), and for JSON-lines plans the line it sits on. All problems found in
 * one validation pass are kept (up to a cap), so a user fixes a plan in one go rather than one
 * error per run.
 */
import { GuestkitError, UsageError } from '../errors.js';

export interface PlanIssue {
  /** Where in the plan: `disks[3].stages[1]`, `retry.attempts`, `concurrency`. */
  path: string;
  message: string;
  /** 1-based line of a JSON-lines plan (or of the syntax error in a JSON plan). */
  line?: number;
}

/** Longest message of one issue. */
export const MAX_ISSUE_MESSAGE = 500;

/** Issues shown in a message; the rest are counted. */
const SHOWN_ISSUES = 20;

export function describeIssue(i: PlanIssue): string {
  const where = i.line !== undefined ? `line ${i.line}: ` : '';
  return `${where}${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export class PlanError extends UsageError {
  override readonly code: string = 'EPLAN';
  /** The problems found, up to a cap; `total` counts them all. */
  readonly issues: PlanIssue[];
  readonly total: number;

  constructor(file: string | undefined, found: PlanIssue[], total = found.length) {
    // A value quoted in a message (an unknown key, a bad string) may be as long as the plan.
    const issues = found.map((i) => (i.message.length > MAX_ISSUE_MESSAGE ? { ...i, message: `${i.message.slice(0, MAX_ISSUE_MESSAGE)}… (cut)` } : i));
    const shown = issues.slice(0, SHOWN_ISSUES).map(describeIssue);
    const more = total - shown.length;
    const detail =
      shown.length === 1 && more === 0
        ? `invalid plan: ${shown[0]}`
        : `invalid plan (${total} problems):\n  ${shown.join('\n  ')}${more > 0 ? `\n  … and ${more} more` : ''}`;
    // No `field`: GuestkitError would append it to a message that already names every path.
    super(detail, { file });
    this.issues = issues;
    this.total = total;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), issues: this.issues, total: this.total };
  }
}

/** `['disks', 3, 'stages', 1]` → `disks[3].stages[1]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/**
 * A stage ran and its check failed: the output's content differs from the source, a checksum is
 * not the expected one, the source is not the expected format. Never retried.
 */
export class VerificationError extends GuestkitError {
  override readonly code: string = 'EVERIFY';
}

// A stage that would write a file already there fails with the atomic output's own error class.
export { OutputExistsError } from '../errors.js';
