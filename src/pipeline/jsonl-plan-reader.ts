/**
 * Reads a JSON-lines plan: one disk per line, optionally preceded by a `{"settings": {...}}`
 * line with the plan's top-level fields (concurrency, retry, defaults). Blank lines and lines
 * starting with `#` are skipped, so a generated plan can carry comments.
 *
 * Each line is one small JSON document, so it is split here and parsed with JSON.parse: that
 * keeps the reader simple and lets every error name its line. Lines are bounded in length so a
 * file that is not JSON lines (one huge line) is refused instead of being buffered whole.
 */
import { StringDecoder } from 'node:string_decoder';
import { PlanError } from './errors.js';
import { planChunks, type PlanItem, type PlanReadOptions } from './json-plan-reader.js';

/** A disk entry is a few hundred bytes; a megabyte is far beyond any sane one. */
export const MAX_LINE_BYTES = 1024 * 1024;


export async function* readJsonLinesPlan(path: string, opts: PlanReadOptions = {}): AsyncGenerator<PlanItem> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let lineNo = 0;
  let index = 0;
  let sawContent = false;

  function* take(text: string): Generator<PlanItem> {
    lineNo++;
    const trimmed = text.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (e) {
      // The line counts as a disk (so later indexes match the file) that failed to parse.
      sawContent = true;
      yield { kind: 'invalid', issue: { path: `disks[${index++}]`, line: lineNo, message: `not valid JSON: ${(e as Error).message}` } };
      return;
    }
    const isSettings = value !== null && typeof value === 'object' && !Array.isArray(value) && 'settings' in value;
    if (isSettings) {
      if (sawContent) throw new PlanError(path, [{ path: 'settings', line: lineNo, message: 'must be the first line of the plan' }]);
      const settings = (value as { settings: unknown }).settings;
      const extra = Object.keys(value as object).filter((k) => k !== 'settings');
      if (extra.length) throw new PlanError(path, [{ path: extra[0], line: lineNo, message: 'unknown field next to "settings"' }]);
      if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) {
        throw new PlanError(path, [{ path: 'settings', line: lineNo, message: 'must be an object' }]);
      }
      sawContent = true;
      for (const [key, v] of Object.entries(settings)) yield { kind: 'header', key, value: v };
      return;
    }
    sawContent = true;
    yield { kind: 'disk', index: index++, value, line: lineNo };
  }

  yield* planChunks(path, opts, function* (chunk) {
    pending += decoder.write(chunk);
    let start = 0;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', start)) {
      const text = pending.slice(start, nl);
      start = nl + 1;
      yield* take(text);
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE_BYTES) {
      throw new PlanError(path, [{ path: '', line: lineNo + 1, message: `line is longer than ${MAX_LINE_BYTES} bytes; a JSON-lines plan holds one disk per line` }]);
    }
  });
  pending += decoder.end();
  if (pending.trim()) yield* take(pending);
}
