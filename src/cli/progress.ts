/**
 * A progress bar on stderr: percent, throughput and time left, redrawn at most ten times a
 * second. Written here rather than taken from a library because it is thirty lines and the
 * libraries pull in terminal dependencies; it degrades to plain lines when stderr is not a TTY.
 */
import { humanSize } from './output.js';

export class ProgressBar {
  private readonly start = performance.now();
  private last = 0;
  private lastPercent = -1;
  constructor(private readonly out: NodeJS.WriteStream) {}

  update(done: number, total: number): void {
    const now = performance.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const pct = total > 0 ? (done / total) * 100 : 100;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? (total - done) / rate : 0;
    const text = `(${pct.toFixed(2).padStart(6)}/100%) ${humanSize(Math.round(rate))}/s, ETA ${eta.toFixed(0)} s`;
    if (this.out.isTTY) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      this.out.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${text}`);
    } else if (Math.floor(pct / 10) !== Math.floor(this.lastPercent / 10)) {
      this.out.write(`${text}\n`);
    }
    this.lastPercent = pct;
  }

  finish(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
