/**
 * Parsing of `-o key=value,...` option strings and the zod pieces that format schemas share.
 * qemu-img spells booleans on/off and sizes with K/M/G/T suffixes; we accept the same.
 */
import * as z from 'zod';
import { UsageError } from '../../errors.js';
import { UUID_TEXT } from './uuid.js';
import { optionFields } from './option-list.js';

const SUFFIX: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5, e: 1024 ** 6 };

/** "64k", "1.5G", "512" → bytes (binary multiples, as qemu-img). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtpe]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`invalid ${what} '${text}': use a number with an optional K, M, G or T suffix`);
  const v = Math.round(Number(m[1]) * SUFFIX[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(v)) throw new UsageError(`${what} '${text}' is too large`);
  return v;
}

/** `-o` as the API takes it — qemu-img's `k=v,k=v` string or an object — as a fresh record. */
export function optionRecord(options: Record<string, unknown> | string | undefined): Record<string, unknown> {
  return typeof options === 'string' ? parseOptionString(options) : { ...(options ?? {}) };
}

/** qemu-img's `-o help` (or `-o ?`): a request for the option list rather than options. */
export function isOptionHelp(text: string | undefined): boolean {
  return text !== undefined && text.split(',').some((p) => p.trim() === 'help' || p.trim() === '?');
}

/** `a=b,c=d` → { a: 'b', c: 'd' }; a doubled comma stands for a literal comma (qemu-img's escaping). */
export function parseOptionString(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  const parts = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  for (const part of parts) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid option '${part}': expected key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

/** A boolean given as on/off, true/false, yes/no, 1/0, or an actual boolean. */
export const zBool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(s)) return true;
  if (['off', 'false', 'no', '0'].includes(s)) return false;
  return v;
}, z.boolean());

/** A byte size given as a number or a string with a suffix. */
export const zSize = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return parseSize(v);
  } catch {
    return v;
  }
}, z.number().int().nonnegative());

/** Runs a driver's option schema and turns zod's complaint into a UsageError naming the option. */
export function parseDriverOptions<T>(schema: z.ZodType<T> | undefined, format: string, options: Record<string, unknown>): T {
  if (!schema) {
    const keys = Object.keys(options);
    if (keys.length) throw new UsageError(`format ${format} takes no options (got ${keys.join(', ')})`);
    return {} as T;
  }
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const unknown = issue.code === 'unrecognized_keys' ? issue.keys : undefined;
  if (unknown?.length) {
    // The valid names, from the same schema: a typo is fixed without a trip to the manual.
    const valid = optionFields(schema).map((f) => f.name);
    throw new UsageError(`unknown ${format} option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; ${format} takes ${valid.join(', ')} (-o help describes them)`, {
      field: unknown.join(', '),
    });
  }
  const key = issue.path.join('.');
  throw new UsageError(`invalid ${format} option${key ? ` '${key}'` : ''}: ${issue.message}`, { field: key || undefined });
}

/** The fields of `o` that are set: option objects built from an image's info leave unknown ones out. */
export function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** A UUID as printed ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"). */
export const zUuid = z.string().regex(UUID_TEXT, 'must be a UUID like 01234567-89ab-cdef-0123-456789abcdef');
