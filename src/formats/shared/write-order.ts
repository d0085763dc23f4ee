/**
 * The writer side of the engine's contract, checked in one place: blocks arrive in increasing
 * offset order, inside the virtual size, and nothing arrives after finish(). A violation is a
 * bug in the caller, reported as a UsageError naming the writer and the offset.
 */
import { UsageError } from '../../errors.js';

export class WriteOrder {
  private pos = 0;
  private finished = false;

  constructor(
    private readonly label: string,
    private readonly virtualSize: number,
    private readonly file?: string,
  ) {}

  /** Accepts [offset, offset + length) or throws. */
  advance(offset: number, length: number): void {
    if (this.finished) throw new UsageError(`${this.label}: write after finish()`, { file: this.file });
    if (!Number.isSafeInteger(offset) || offset < this.pos || offset + length > this.virtualSize) {
      throw new UsageError(`${this.label}: ${length} bytes at ${offset} are out of order or past the virtual size (${this.virtualSize})`, {
        file: this.file,
        offset,
      });
    }
    this.pos = offset + length;
  }

  /** Marks the end of the writes; a second call is an error. */
  finish(): void {
    if (this.finished) throw new UsageError(`${this.label}: finish() called twice`, { file: this.file });
    this.finished = true;
  }

  /** Ends without the checks (abort). */
  close(): void {
    this.finished = true;
  }

  get done(): boolean {
    return this.finished;
  }
}
