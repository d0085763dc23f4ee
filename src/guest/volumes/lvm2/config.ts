/**
 * LVM2's configuration syntax, in which the text metadata of a volume group is written
 * (lib/config/config.c): `name = value`, `name { … }`, values are "strings", integers, floats and
 * [arrays]; `#` starts a comment. Parsed into a plain tree that schema.ts then checks with zod.
 */
import { CorruptImageError, LimitExceededError } from '../../../errors.js';

export type ConfigValue = string | number | ConfigValue[] | ConfigSection;
export interface ConfigSection {
  [key: string]: ConfigValue;
}

/** Metadata nests vg { logical_volumes { lv { segment { … } } } }: four levels; 16 leaves room and stops hostile recursion. */
export const MAX_CONFIG_DEPTH = 16;
/** LVM's own metadata area default is 1 MiB and metadata is far smaller; this bounds what a header can make us parse. */
export const MAX_CONFIG_TEXT = 4 * 1024 * 1024;

type Token = { kind: '{' | '}' | '[' | ']' | '=' | ',' | 'str' | 'num' | 'id'; text: string; at: number };

const IDENT = /[A-Za-z0-9_+.\-/:]/;

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fail = (what: string, at: number): never => {
    throw new CorruptImageError(`LVM metadata: ${what} at character ${at}`, { file, field: 'LVM metadata text', offset: at });
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
    else if ('{}[]=,'.includes(c)) {
      out.push({ kind: c as Token['kind'], text: c, at: i });
      i++;
    } else if (c === '"') {
      const start = i++;
      let s = '';
      while (true) {
        if (i >= text.length) fail('unterminated string', start);
        const ch = text[i++];
        if (ch === '"') break;
        if (ch === '\\') {
          if (i >= text.length) fail('unterminated string', start);
          s += text[i++];
        } else s += ch;
      }
      out.push({ kind: 'str', text: s, at: start });
    } else if (IDENT.test(c)) {
      const start = i;
      while (i < text.length && IDENT.test(text[i])) i++;
      const word = text.slice(start, i);
      out.push({ kind: /^-?\d+(\.\d+)?$/.test(word) ? 'num' : 'id', text: word, at: start });
    } else fail(`unexpected character ${JSON.stringify(c)}`, i);
  }
  return out;
}

export function parseConfig(text: string, file = 'LVM metadata'): ConfigSection {
  if (text.length > MAX_CONFIG_TEXT) {
    throw new LimitExceededError(`LVM metadata text of ${text.length} characters is larger than ${MAX_CONFIG_TEXT}`, { file, field: 'LVM metadata text' });
  }
  const toks = tokenize(text, file);
  let p = 0;
  const fail = (what: string): never => {
    const at = toks[p]?.at ?? text.length;
    throw new CorruptImageError(`LVM metadata: ${what} at character ${at}`, { file, field: 'LVM metadata text', offset: at });
  };
  const value = (depth: number): ConfigValue => {
    const t = toks[p++];
    if (!t) return fail('value expected');
    if (t.kind === 'str') return t.text;
    if (t.kind === 'num') {
      const n = Number(t.text);
      if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n))) fail(`number ${t.text} out of range`);
      return n;
    }
    if (t.kind === '[') {
      if (depth > MAX_CONFIG_DEPTH) throw new LimitExceededError(`LVM metadata nests deeper than ${MAX_CONFIG_DEPTH}`, { file, field: 'LVM metadata text', offset: t.at });
      const arr: ConfigValue[] = [];
      while (toks[p]?.kind !== ']') {
        if (p >= toks.length) fail('unterminated array');
        arr.push(value(depth + 1));
        if (toks[p]?.kind === ',') p++;
      }
      p++;
      return arr;
    }
    return fail(`value expected, found ${JSON.stringify(t.text)}`);
  };
  const section = (depth: number, closing: boolean): ConfigSection => {
    if (depth > MAX_CONFIG_DEPTH) throw new LimitExceededError(`LVM metadata nests deeper than ${MAX_CONFIG_DEPTH}`, { file, field: 'LVM metadata text', offset: toks[p]?.at });
    const out: ConfigSection = Object.create(null);
    while (p < toks.length) {
      const t = toks[p];
      if (t.kind === '}') {
        if (!closing) fail('unbalanced "}"');
        p++;
        return out;
      }
      if (t.kind !== 'id' && t.kind !== 'num') fail(`name expected, found ${JSON.stringify(t.text)}`);
      p++;
      const op = toks[p++];
      if (op?.kind === '=') out[t.text] = value(depth);
      else if (op?.kind === '{') out[t.text] = section(depth + 1, true);
      else fail(`"=" or "{" expected after ${t.text}`);
    }
    if (closing) fail('unterminated section');
    return out;
  };
  return section(0, false);
}
