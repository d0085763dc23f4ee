/**
 * schema/plan.schema.json is generated from the zod schemas (`npm run schema`); it must be the
 * file the generator writes today, or editors would check plans by stale rules.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIELD_DESCRIPTIONS, PLAN_SCHEMA_PATH, planJsonSchema, planJsonSchemaText } from '../../scripts/plan-schema.js';
import { STAGE_NAMES, stageSchema } from '../../src/pipeline/schema.js';

type Json = Record<string, any>;

describe('schema/plan.schema.json', () => {
  it('is what `npm run schema` generates from the zod schemas', () => {
    expect(readFileSync(PLAN_SCHEMA_PATH, 'utf8')).toBe(planJsonSchemaText());
  });

  it('describes every field of a plan, a disk, the defaults and the retry policy', () => {
    const schema = planJsonSchema() as Json;
    const objects: Json[] = [schema.anyOf[0], schema.$defs.Disk, schema.$defs.Defaults, schema.$defs.Retry];
    const undescribed = objects.flatMap((o) => Object.entries(o.properties as Json).filter(([, p]) => !p.description).map(([k]) => k));
    expect(undescribed).toEqual([]);
    // A description left for a field that is gone would mislead the next reader of the table.
    const fields = new Set(objects.flatMap((o) => Object.keys(o.properties as Json)));
    expect(Object.keys(FIELD_DESCRIPTIONS).filter((k) => !fields.has(k))).toEqual([]);
  });

  it('lists as bare strings exactly the stage names the runner accepts bare', () => {
    const bare = ((planJsonSchema() as Json).$defs.Stage.anyOf[0] as Json).enum as string[];
    expect(bare).toEqual(STAGE_NAMES.filter((n) => stageSchema.safeParse(n).success));
    expect(bare).not.toContain('copy-to');
  });
});
