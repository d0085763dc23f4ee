/** Turns zod's issues into plan issues whose paths and messages a plan author can act on. */
import type { z } from 'zod';
import { STAGE_NAMES } from './schema.js';
import { formatPath, type PlanIssue } from './errors.js';

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/**
 * `value` is what was checked, `prefix` where it sits in the plan (`['disks', 3]`), so the
 * issue for its `stages[1]` reads `disks[3].stages[1]`.
 */
export function issuesFromZod(error: z.ZodError, value: unknown, prefix: ReadonlyArray<PropertyKey>, line?: number): PlanIssue[] {
  return error.issues.map((iss) => {
    let path = [...iss.path];
    let message = iss.message;
    if (iss.code === 'unrecognized_keys') {
      // zod reports the object; the user wants the key.
      const keys = (iss as { keys: string[] }).keys;
      if (keys.length === 1) path.push(keys[0]);
      message = keys.length === 1 ? 'unknown field' : `unknown fields ${keys.map((k) => `'${k}'`).join(', ')}`;
    } else if (iss.code === 'invalid_union' && (iss as { discriminator?: string }).discriminator === 'type') {
      // A stage written as "conver": point at the stage, not at the `type` we made from it.
      const stagePath = path.at(-1) === 'type' ? path.slice(0, -1) : path;
      const raw = valueAt(value, stagePath);
      const name = typeof raw === 'string' ? raw : (raw as { type?: unknown } | undefined)?.type;
      path = stagePath;
      message = `unknown stage ${JSON.stringify(name ?? null)}; stages are ${STAGE_NAMES.join(', ')}`;
    } else if (iss.code === 'invalid_type' && iss.message.endsWith('received undefined')) {
      message = 'required';
    }
    return { path: formatPath([...prefix, ...path]), message, ...(line !== undefined ? { line } : {}) };
  });
}
