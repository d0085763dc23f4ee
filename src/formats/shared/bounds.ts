/**
 * Every size read from a file is bounded before it is used (docs/ARCHITECTURE.md example 3): a table
 * length, a grain count or a cluster size straight from a hostile header must never decide how
 * much memory we allocate or how long we loop.
 */
import { CorruptImageError, LimitExceededError, TruncatedImageError } from '../../errors.js';

export interface Where {
  file?: string;
  field: string;
  offset?: number;
}

/** Refuses `value` above `max`; `why` says what the bound protects, in the error. */
export function limit(value: number, max: number, where: Where, why = 'larger than supported'): number {
  if (!Number.isFinite(value) || value > max) {
    throw new LimitExceededError(`${where.field} is ${value}, ${why} (limit ${max})`, where);
  }
  return value;
}

/** Requires min <= value <= max, as a corruption (not a resource limit). */
export function inRange(value: number, min: number, max: number, where: Where): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new CorruptImageError(`${where.field} is ${value}, expected ${min}..${max}`, where);
  }
  return value;
}

/** Requires a structure [offset, offset+length) to lie inside a file of `fileSize` bytes. */
export function within(offset: number, length: number, fileSize: number, where: Where): void {
  if (offset < 0 || length < 0 || offset + length > fileSize) {
    throw new TruncatedImageError(
      `${where.field} at ${offset} (${length} bytes) lies past the end of the file (${fileSize} bytes)`,
      { ...where, offset: where.offset ?? offset },
    );
  }
}

export function requireAligned(value: number, alignment: number, where: Where): number {
  if (value % alignment !== 0) throw new CorruptImageError(`${where.field} ${value} is not aligned to ${alignment}`, where);
  return value;
}

export const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;

export const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);
export const roundUp = (a: number, b: number): number => ceilDiv(a, b) * b;
export const roundDown = (a: number, b: number): number => Math.floor(a / b) * b;
