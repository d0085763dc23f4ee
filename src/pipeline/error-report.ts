/**
 * An error as events and the summary carry it. `code` is what automation branches on: the
 * system's errno for I/O failures (ENOENT, EACCES, ENOSPC…), which our IoError keeps beside its
 * generic EIO, else the GuestkitError code (ECORRUPT, EVERIFY…). `error` names the error class
 * from a fixed table rather than from `constructor.name`, which a bundler may rename.
 */
import {
  AbortedError,
  ConfinementError,
  CorruptImageError,
  GuestkitError,
  IoError,
  LimitExceededError,
  TruncatedImageError,
  UnsupportedFeatureError,
  UsageError,
} from '../errors.js';
import { OutputExistsError, PlanError, VerificationError } from './errors.js';
import type { ErrorReport } from './events.js';

/** Longest message an event carries: a hostile image or plan must not make a 40 MB event. */
export const MAX_REPORTED_MESSAGE = 2000;

/** Most specific first: a TruncatedImageError is also a CorruptImageError. */
const CLASSES: Array<[new (...args: never[]) => GuestkitError, string]> = [
  [LimitExceededError, 'LimitExceededError'],
  [TruncatedImageError, 'TruncatedImageError'],
  [CorruptImageError, 'CorruptImageError'],
  [UnsupportedFeatureError, 'UnsupportedFeatureError'],
  [ConfinementError, 'ConfinementError'],
  [AbortedError, 'AbortedError'],
  [IoError, 'IoError'],
  [PlanError, 'PlanError'],
  [OutputExistsError, 'OutputExistsError'],
  [VerificationError, 'VerificationError'],
  [UsageError, 'UsageError'],
];

export function capMessage(message: string, max = MAX_REPORTED_MESSAGE): string {
  return message.length <= max ? message : `${message.slice(0, max)}… (${message.length - max} more characters)`;
}

function className(e: GuestkitError): string {
  for (const [cls, name] of CLASSES) if (e instanceof cls) return name;
  return 'GuestkitError';
}

export function errorReport(e: unknown): ErrorReport {
  if (e instanceof GuestkitError) {
    const errno = e instanceof IoError ? e.errno : undefined;
    return {
      code: errno ?? e.code,
      error: className(e),
      message: capMessage(e.message),
      ...(e.file !== undefined ? { file: e.file } : {}),
      ...(e.field !== undefined ? { field: e.field } : {}),
      ...(e.offset !== undefined ? { offset: e.offset } : {}),
    };
  }
  const err = e as { code?: unknown; message?: unknown } | undefined;
  const system = typeof err?.code === 'string';
  return {
    code: system ? (err!.code as string) : 'EINTERNAL',
    error: system ? 'SystemError' : 'InternalError',
    message: capMessage(typeof err?.message === 'string' ? err.message : String(e)),
  };
}
