/**
 * Errors of path lookups inside a guest filesystem. They are not corruption: the path is wrong for
 * this filesystem. Codes follow errno so users and scripts recognise them.
 */
import { GuestkitError, type ErrorContext } from '../../errors.js';

export class GuestPathError extends GuestkitError {
  override readonly code: string;
  constructor(
    code: 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'ELOOP' | 'EINVAL' | 'ENAMETOOLONG',
    detail: string,
    readonly path: string,
    ctx: ErrorContext = {},
  ) {
    super(detail, ctx);
    this.code = code;
  }
}
