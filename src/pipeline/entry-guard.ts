/**
 * Bounds each entry of a JSON plan (a disk, or a header field such as `defaults`) while it is
 * still being parsed. The streaming parser builds an entry whole before handing it out, so
 * without this a single disk with two million option keys is parsed into a gigabyte of objects
 * before any check sees it. JSON-lines plans get the same bound from their line length.
 */
import { TokenType } from '@streamparser/json';
import { PlanError } from './errors.js';

/** A disk entry is a few hundred bytes; a mebibyte is far beyond any sane one. */
export const MAX_ENTRY_BYTES = 1024 * 1024;

export class EntryGuard {
  private depth = 0;
  /** Depth inside the `disks` array (1 for a bare array of disks), once it is open. */
  private disksDepth = -1;
  private diskIndex = 0;
  private rootIsObject = false;
  /** The last key of the root object, and the token before the current one at that level. */
  private rootKey: string | undefined;
  private prevAtRoot: TokenType | undefined;
  /** The entry being bounded: where it started, its depth once open, its name for the message. */
  private start = -1;
  private startDepth = -1;
  private what = '';

  constructor(
    private readonly file: string,
    private readonly limit = MAX_ENTRY_BYTES,
  ) {}

  token(type: TokenType, value: unknown, offset: number): void {
    if (this.start >= 0 && offset - this.start > this.limit) {
      throw new PlanError(this.file, [{ path: this.what, message: `is longer than ${this.limit} bytes, far beyond any real entry; the plan is refused before it is read whole` }]);
    }
    const opens = type === TokenType.LEFT_BRACE || type === TokenType.LEFT_BRACKET;
    const closes = type === TokenType.RIGHT_BRACE || type === TokenType.RIGHT_BRACKET;
    if (this.depth === 0 && opens) {
      this.rootIsObject = type === TokenType.LEFT_BRACE;
      if (!this.rootIsObject) this.disksDepth = 1;
    } else if (this.depth === 1 && this.rootIsObject) {
      if (type === TokenType.STRING && (this.prevAtRoot === TokenType.LEFT_BRACE || this.prevAtRoot === TokenType.COMMA)) this.rootKey = String(value);
      if (opens && this.rootKey === 'disks' && type === TokenType.LEFT_BRACKET) this.disksDepth = 2;
      else if (opens && this.start < 0) this.begin(offset, this.rootKey ?? '');
    }
    if (this.depth === this.disksDepth) {
      if (type === TokenType.COMMA) this.diskIndex++;
      else if (opens && this.start < 0) this.begin(offset, `disks[${this.diskIndex}]`);
    }
    if (opens) this.depth++;
    if (closes) {
      this.depth--;
      if (this.depth < this.startDepth) this.start = this.startDepth = -1;
      if (this.depth < this.disksDepth) this.disksDepth = -1;
    }
    if (this.depth === 1) this.prevAtRoot = type;
  }

  private begin(offset: number, what: string): void {
    this.start = offset;
    this.startDepth = this.depth + 1;
    this.what = what;
  }
}
