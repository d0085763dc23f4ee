/**
 * Typed errors. Every error raised on behalf of an image carries where it happened:
 * the file (as the user named it), the field of the on-disk layout and the byte offset.
 * Only the CLI turns these into messages and exit codes.
 */
export interface ErrorContext {
  file?: string;
  field?: string;
  offset?: number;
  cause?: unknown;
}

export class GuestkitError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly offset?: number;
  /** Short machine-readable kind, stable across releases. */
  readonly code: string = 'EGUESTKIT';
  /** The message without the location suffix. */
  readonly detail: string;

  constructor(detail: string, ctx: ErrorContext = {}) {
    super(GuestkitError.compose(detail, ctx), ctx.cause !== undefined ? { cause: ctx.cause } : undefined);
    this.name = new.target.name;
    this.detail = detail;
    this.file = ctx.file;
    this.field = ctx.field;
    this.offset = ctx.offset;
  }

  private static compose(detail: string, ctx: ErrorContext): string {
    const where: string[] = [];
    if (ctx.field !== undefined) where.push(`field ${ctx.field}`);
    if (ctx.offset !== undefined) where.push(`offset ${ctx.offset}`);
    const suffix = where.length ? ` (${where.join(', ')})` : '';
    return ctx.file !== undefined ? `${ctx.file}: ${detail}${suffix}` : `${detail}${suffix}`;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.name, code: this.code, message: this.message, file: this.file, field: this.field, offset: this.offset };
  }
}

/** The bytes are not a valid image of the format they claim to be (QEMU's -EINVAL). */
export class CorruptImageError extends GuestkitError {
  override readonly code: string = 'ECORRUPT';
}

/** A valid image that uses something we do not implement (QEMU's -ENOTSUP). */
export class UnsupportedFeatureError extends GuestkitError {
  override readonly code: string = 'EUNSUPPORTED';
}

/** The file ends before a structure it must contain. */
export class TruncatedImageError extends CorruptImageError {
  override readonly code: string = 'ETRUNCATED';
}

/** The caller asked for something impossible or contradictory (bad flags, bad sizes). */
export class UsageError extends GuestkitError {
  override readonly code: string = 'EUSAGE';
}

/** The output exists and --force (library: force) was not given; also when it appears while the output is written. */
export class OutputExistsError extends UsageError {
  override readonly code: string = 'EEXIST';
}

/** The operating system refused an operation; `errno` keeps the system code (EIO, ENOSPC, …). */
export class IoError extends GuestkitError {
  override readonly code: string = 'EIO';
  readonly errno?: string;
  constructor(detail: string, ctx: ErrorContext & { errno?: string } = {}) {
    super(detail, ctx);
    this.errno = ctx.errno;
  }
}

/** A path taken from an image (backing file, extent, parent locator) leaves the allowed folder. */
export class ConfinementError extends GuestkitError {
  override readonly code: string = 'ECONFINED';
}

/** A limit that protects memory or time was reached (chain too deep, table too large for a cap). */
export class LimitExceededError extends CorruptImageError {
  override readonly code: string = 'ELIMIT';
}

/** The operation was cancelled through an AbortSignal or a signal to the process. */
export class AbortedError extends GuestkitError {
  override readonly code: string = 'EABORTED';
}

export function isGuestkitError(e: unknown): e is GuestkitError {
  return e instanceof GuestkitError;
}

/** Wraps a Node system error (which carries `code`) into an IoError naming the file. */
export function toIoError(e: unknown, file: string, what: string, offset?: number): GuestkitError {
  if (e instanceof GuestkitError) return e;
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err?.code === 'string' ? err.code : undefined;
  const reason = errno ? `${errno}${err.message ? ` (${err.message.replace(/^[A-Z]+: /, '')})` : ''}` : String(err?.message ?? e);
  return new IoError(`${what} failed: ${reason}`, { file, offset, errno, cause: e });
}
