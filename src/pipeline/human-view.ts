/**
 * The human view of a running pipeline: one line per finished, skipped or failed disk, and, on
 * a terminal, a live block of progress bars (one per disk in flight, plus the overall count)
 * redrawn at most ten times a second below those lines. Without a terminal only the lines are
 * written, so a log file gets no control characters.
 */
import { humanSize } from '../cli/output.js';
import type { PipelineEvent } from './events.js';

export interface ViewOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

interface Active {
  id: string;
  stage: string;
  done: number;
  total: number;
  /** "raw→qcow2, 1 MiB" once converted, for the finished line. */
  converted?: string;
}

const REDRAW_MS = 100;
const BAR = 24;

function bar(done: number, total: number): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(frac * BAR);
  return `[${'#'.repeat(filled)}${' '.repeat(BAR - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
}

export class HumanView {
  private readonly active = new Map<string, Active>();
  private drawnLines = 0;
  private lastDraw = 0;
  private total = 0;
  private finished = 0;
  private failed = 0;
  private skipped = 0;

  /** `now` is injectable so tests can step past the redraw throttle. */
  constructor(
    private readonly out: ViewOutput,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private fit(line: string): string {
    const cols = this.out.columns ?? 100;
    return line.length > cols - 1 ? `${line.slice(0, cols - 2)}…` : line;
  }

  private clearBars(): void {
    if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}F\x1b[J`);
    this.drawnLines = 0;
  }

  private drawBars(force = false): void {
    if (!this.out.isTTY) return;
    const now = this.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.clearBars();
    const lines = [...this.active.values()].map((a) => this.fit(`  ${bar(a.done, a.total)} ${a.stage.padEnd(12)} ${a.id}`));
    const settled = this.finished + this.failed + this.skipped;
    lines.push(this.fit(`${bar(settled, this.total)} ${settled}/${this.total} disks${this.failed ? `, ${this.failed} failed` : ''}`));
    this.out.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** Prints a line above the bars. */
  private line(text: string): void {
    if (this.out.isTTY) this.clearBars();
    this.out.write(`${text}\n`);
    if (this.out.isTTY) this.drawBars(true);
  }

  handle(e: PipelineEvent): void {
    switch (e.type) {
      case 'plan-started':
        this.total = e.disks;
        this.line(`${e.plan ?? 'plan'}: ${e.disks} disk${e.disks === 1 ? '' : 's'}, ${e.concurrency} at a time${e.resume ? ', resuming' : ''}`);
        break;
      case 'disk-started':
        this.active.set(e.disk, { id: e.disk, stage: 'starting', done: 0, total: 0 });
        this.drawBars();
        break;
      case 'stage-started': {
        const a = this.active.get(e.disk);
        if (a) Object.assign(a, { stage: e.stage, done: 0, total: 0 });
        this.drawBars();
        break;
      }
      case 'progress': {
        const a = this.active.get(e.disk);
        if (a) Object.assign(a, { stage: e.stage, done: e.done, total: e.total });
        this.drawBars();
        break;
      }
      case 'retry':
        this.line(`↻ ${e.disk}: ${e.stage} failed (${e.error.message}); try ${e.attempt + 1} in ${e.delayMs} ms`);
        break;
      case 'stage-done':
        if (e.stage === 'convert' && typeof e.result.virtualSize === 'number') {
          const a = this.active.get(e.disk);
          if (a) a.converted = `${e.result.sourceFormat}→${e.result.format}, ${humanSize(e.result.virtualSize)}`;
        }
        break;
      case 'disk-skipped':
        this.skipped++;
        this.line(`– ${e.disk}: skipped, ${e.reason}`);
        break;
      case 'disk-failed':
        this.active.delete(e.disk);
        this.failed++;
        this.line(`✗ ${e.disk}: failed at ${e.stage}${e.attempts > 1 ? ` after ${e.attempts} tries` : ''}: ${e.error.message}`);
        break;
      case 'disk-finished': {
        const converted = this.active.get(e.disk)?.converted;
        this.active.delete(e.disk);
        this.finished++;
        this.line(`✓ ${e.disk} (${converted ? `${converted}, ` : ''}${e.seconds.toFixed(2)} s)${e.sha256 ? ` sha256 ${e.sha256.slice(0, 16)}…` : ''}${e.copies ? `, copied to ${e.copies.length} file${e.copies.length === 1 ? '' : 's'}` : ''}`);
        break;
      }
      case 'summary': {
        if (this.out.isTTY) this.clearBars();
        const parts = [`${e.succeeded} succeeded`, `${e.failed} failed`, ...(e.skipped ? [`${e.skipped} skipped (done earlier)`] : [])];
        this.out.write(`\n${e.total} disk${e.total === 1 ? '' : 's'}: ${parts.join(', ')} in ${e.seconds.toFixed(1)} s${e.aborted ? ' (cancelled)' : ''}\n`);
        if (e.failures.length) {
          this.out.write('Failed:\n');
          for (const f of e.failures) this.out.write(`  ${f.disk} (disks[${f.index}], ${f.stage}): ${f.message}\n`);
          if (e.unlisted) this.out.write(`  … and ${e.unlisted} more (each has its disk-failed event: --events json)\n`);
        }
        break;
      }
      case 'plan-invalid':
        break; // the error message itself lists the problems
    }
  }
}
