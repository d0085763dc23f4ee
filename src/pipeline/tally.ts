/**
 * The counts a run reports at the end. Failures are listed up to MAX_LISTED_FAILURES and only
 * counted beyond that, so a plan of half a million disks that all fail costs the memory of a
 * thousand reports, not of half a million (each failure had its own disk-failed event anyway).
 */
import { capMessage } from './error-report.js';
import { stamp, type FailureReport, type PipelineSummary } from './events.js';

export const MAX_LISTED_FAILURES = 1000;
/** A summary line per failure is for a human: shorter than an event's message. */
const SUMMARY_MESSAGE = 500;

export class Tally {
  succeeded = 0;
  skipped = 0;
  failed = 0;
  private readonly listed: FailureReport[] = [];

  fail(report: FailureReport): void {
    this.failed++;
    if (this.listed.length < MAX_LISTED_FAILURES) this.listed.push({ ...report, message: capMessage(report.message, SUMMARY_MESSAGE) });
  }

  summary(total: number, seconds: number, aborted: boolean): PipelineSummary {
    const failures = [...this.listed].sort((a, b) => a.index - b.index);
    const unlisted = this.failed - failures.length;
    return stamp({
      type: 'summary',
      total,
      succeeded: this.succeeded,
      failed: this.failed,
      skipped: this.skipped,
      seconds,
      failures,
      ...(unlisted > 0 ? { unlisted } : {}),
      ...(aborted ? { aborted: true } : {}),
    }) as PipelineSummary;
  }
}
