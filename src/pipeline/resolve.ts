/**
 * From a disk entry as written to the disk the runner works on: defaults merged in, paths made
 * absolute (relative paths are taken from the plan's folder, so a plan moves with its disks),
 * format names and options checked against the drivers, and the rules between stages enforced.
 * Everything that can be known before touching an image is checked here, so a plan with a typo
 * in disk 9,000 fails before disk 1 is converted.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { GuestkitError } from '../errors.js';
import { outputDriverFor } from '../api/convert.js';
import { writeRefusal } from '../formats/capabilities.js';
import { byName } from '../formats/registry.js';
import { parseDriverOptions, parseOptionString } from '../formats/shared/options.js';
import type { PlanIssue } from './errors.js';
import { diskSchema, type DiskDefaults, type Stage } from './schema.js';
import { issuesFromZod } from './zod-issues.js';

export type ResolvedStage = Stage;

/** Format options a disk may set; qcow2, the richest format, has about a dozen. */
export const MAX_OPTION_KEYS = 64;

/** What a disk that names no stages (and whose plan has no defaults.stages) does. */
export const DEFAULT_STAGES: readonly Stage[] = [{ type: 'convert' }, { type: 'verify' }];

export interface ResolvedDisk {
  /** Position in the plan's disk list (0-based), and the line for JSON-lines plans. */
  index: number;
  line?: number;
  id: string;
  /** Absolute paths. */
  source: string;
  output?: string;
  sourceFormat?: string;
  /** Output format (driver name), set when the disk converts. */
  format?: string;
  compress: boolean;
  options?: Record<string, unknown> | string;
  force: boolean;
  /** Stages in order; copy-to folders absolute. */
  stages: ResolvedStage[];
}

export type ResolveOutcome = { ok: true; disk: ResolvedDisk } | { ok: false; issues: PlanIssue[] };

interface Where {
  index: number;
  line?: number;
  baseDir: string;
}

function absolute(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolvePath(baseDir, p);
}

function messageOf(e: unknown): string {
  return e instanceof GuestkitError ? e.detail : e instanceof Error ? e.message : String(e);
}

export function resolveDisk(raw: unknown, defaults: DiskDefaults, where: Where): ResolveOutcome {
  const prefix = ['disks', where.index];
  const parsed = diskSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, issues: issuesFromZod(parsed.error, raw, prefix, where.line) };
  const entry = parsed.data;
  const issues: PlanIssue[] = [];
  const at = (field: string, message: string) => {
    // A field the disk did not set came from the plan's defaults: point there.
    const fromDefaults = !(field.split(/[.[]/)[0] in entry) && field.split(/[.[]/)[0] in defaults;
    issues.push({ path: fromDefaults ? `defaults.${field}` : `disks[${where.index}].${field}`, message: fromDefaults ? `${message} (for disks[${where.index}])` : message, ...(where.line !== undefined ? { line: where.line } : {}) });
  };

  const merged = { ...defaults, ...entry };
  const stages = merged.stages ?? DEFAULT_STAGES;
  if (!merged.stages && entry.output === undefined) {
    at('output', `required by the default stages (${DEFAULT_STAGES.map((s) => s.type).join(', ')}); give the disk an output, or name its stages`);
    return { ok: false, issues };
  }

  if (merged.sourceFormat !== undefined) {
    try {
      const d = byName(merged.sourceFormat);
      if (!d.capabilities.read) at('sourceFormat', `${d.name} images cannot be read yet`);
    } catch (e) {
      at('sourceFormat', messageOf(e));
    }
  }

  const source = absolute(where.baseDir, entry.source);
  const output = entry.output !== undefined ? absolute(where.baseDir, entry.output) : undefined;
  if (output !== undefined && output === source) at('output', 'is the same file as the source');

  const seen = new Map<string, number>();
  const convertAt = stages.findIndex((s) => s.type === 'convert');
  let format: string | undefined;
  stages.forEach((s, k) => {
    const first = seen.get(s.type);
    if (first !== undefined && s.type !== 'copy-to') at(`stages[${k}]`, `${s.type} is already stage ${first}`);
    if (first === undefined) seen.set(s.type, k);
    const beforeConvert = convertAt > k;
    switch (s.type) {
      case 'convert':
        if (output === undefined) at('output', `required by the convert stage (stages[${k}])`);
        break;
      case 'verify':
        if (output === undefined) at(`stages[${k}]`, 'verify compares the output with the source, and this disk has no output');
        else if (beforeConvert) at(`stages[${k}]`, 'verify must come after convert');
        break;
      case 'checksum':
        if (s.of === 'output' && output === undefined) at(`stages[${k}]`, 'checksum of the output, and this disk has no output');
        else if (beforeConvert && s.of !== 'source') at(`stages[${k}]`, 'checksum of the output must come after convert');
        break;
      case 'copy-to':
        if (beforeConvert) at(`stages[${k}]`, 'copy-to must come after convert');
        break;
      case 'detect':
        if (s.expect !== undefined) {
          try {
            byName(s.expect);
          } catch (e) {
            at(`stages[${k}].expect`, messageOf(e));
          }
        }
        break;
      case 'inspect-info':
        break;
    }
  });

  if (convertAt >= 0 && output !== undefined) {
    let driver;
    try {
      driver = outputDriverFor(output, merged.format);
    } catch (e) {
      at('format', messageOf(e));
    }
    if (driver) {
      format = driver.name;
      const refusal = writeRefusal(driver, { compress: merged.compress });
      if (refusal) at(refusal.field === 'compress' ? 'compress' : merged.format ? 'format' : 'output', refusal.error.detail);
      else {
        try {
          const opts = typeof merged.options === 'string' ? parseOptionString(merged.options) : (merged.options ?? {});
          const keys = Object.keys(opts).length;
          // Checked before the driver sees them: its message would list every unknown key.
          if (keys > MAX_OPTION_KEYS) at('options', `has ${keys} keys; a disk takes at most ${MAX_OPTION_KEYS} (no format has that many options)`);
          else parseDriverOptions(driver.optionsSchema, driver.name, opts);
        } catch (e) {
          at('options', messageOf(e));
        }
      }
    }
  }

  if (issues.length) return { ok: false, issues };
  return {
    ok: true,
    disk: {
      index: where.index,
      ...(where.line !== undefined ? { line: where.line } : {}),
      id: entry.id ?? entry.output ?? entry.source,
      source,
      ...(output !== undefined ? { output } : {}),
      ...(merged.sourceFormat !== undefined ? { sourceFormat: merged.sourceFormat } : {}),
      ...(format !== undefined ? { format } : {}),
      compress: merged.compress ?? false,
      ...(merged.options !== undefined ? { options: merged.options } : {}),
      force: merged.force ?? false,
      stages: stages.map((s) => (s.type === 'copy-to' ? { ...s, dir: absolute(where.baseDir, s.dir) } : s)),
    },
  };
}
