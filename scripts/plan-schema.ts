/**
 * The JSON Schema of a pipeline plan (schema/plan.schema.json), generated from the zod schemas
 * the runner validates with, so editors check and complete a plan file by the same rules.
 * `npm run schema` rewrites the file; test/package/plan-schema.test.ts fails when the committed
 * file differs from what this generates.
 *
 * The schema describes the JSON document form ({"disks": [...]} or a bare array of disks); a
 * JSON-lines plan is one Disk per line, after an optional {"settings": {...}} line.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as z from 'zod';
import { defaultsSchema, diskSchema, headerSchema, retrySchema, stageSchema } from '../src/pipeline/schema.js';

export const PLAN_SCHEMA_PATH = fileURLToPath(new URL('../schema/plan.schema.json', import.meta.url));

/**
 * Field descriptions for editors' hover text. The zod schemas carry theirs as doc comments,
 * which zod cannot see; plan-schema.test.ts fails when a field of a plan, a disk, the defaults
 * or the retry policy has none here, so a new field cannot go undescribed.
 */
export const FIELD_DESCRIPTIONS: Record<string, string> = {
  version: 'Plan format version; only 1 exists.',
  concurrency: 'Disks processed at once; default: the number of cores, at most 4.',
  retry: 'How often and how patiently a failed stage is tried again.',
  defaults: 'Fields every disk takes unless it sets them itself.',
  disks: 'The disks to process, in order; each runs its stages one after another.',
  attempts: 'Total tries of a stage, the first included.',
  baseDelayMs: 'Delay before the first retry, in milliseconds; doubles with each retry.',
  maxDelayMs: 'Longest delay between two tries, in milliseconds.',
  id: 'Name in events, summary and resume state; defaults to the output, else the source.',
  source: 'Image to read; relative paths are taken from the plan file\'s folder.',
  output: 'Image the convert stage writes; a disk without one only reads its source.',
  sourceFormat: 'Source format; detected from content when omitted.',
  format: 'Output format (raw, qcow2, vmdk, vhd/vpc, vdi); from the output\'s extension when omitted, else raw.',
  compress: 'Compress the output (qcow2 and streamOptimized VMDK).',
  options: "Output format options: an object or qemu-img's `k=v,k=v` string.",
  force: 'Replace an existing output or copy.',
  stages: 'What to do with the disk, in order; a stage without parameters may be written as its name alone. Required, in the disk or in defaults.',
};

type Json = Record<string, unknown>;

/** The plan schema, as zod would validate a whole plan document in one piece. */
function planSchema() {
  const disks = z.array(diskSchema).min(1, 'the plan has no disks');
  return z.union([headerSchema.extend({ disks }), disks]);
}

/** Stage names that need no parameters, and so may be written as a bare string. */
function bareStageNames(stageJson: Json): string[] {
  const variants = (stageJson.oneOf ?? stageJson.anyOf) as Json[];
  return variants
    .filter((v) => JSON.stringify(v.required) === JSON.stringify(['type']))
    .map((v) => ((v.properties as Record<string, Json>).type as Json).const as string);
}

function describeFields(node: Json | undefined): void {
  const props = node?.properties as Record<string, Json> | undefined;
  for (const [key, prop] of Object.entries(props ?? {})) {
    const description = FIELD_DESCRIPTIONS[key];
    if (description !== undefined) prop.description = description;
  }
}

export function planJsonSchema(): Json {
  const registry = z.registry<{ id?: string; title?: string; description?: string }>();
  registry.add(stageSchema, { id: 'Stage', description: 'One step of a disk: detect, inspect-info, convert, verify, checksum or copy-to.' });
  registry.add(diskSchema, { id: 'Disk', description: 'One disk: a source image, usually an output, and the stages to run.' });
  registry.add(defaultsSchema, { id: 'Defaults' });
  registry.add(retrySchema, { id: 'Retry' });
  const json = z.toJSONSchema(planSchema(), {
    target: 'draft-2020-12',
    // A plan as written: defaults may be left out, and the checksum's hex case is free.
    io: 'input',
    metadata: registry,
    unrepresentable: 'throw',
    override: (ctx) => {
      // The stage schema accepts "convert" for {"type": "convert"} by preprocessing, which
      // JSON Schema cannot see: spell the bare names out beside the objects.
      if (ctx.zodSchema !== stageSchema) return;
      const variants = ctx.jsonSchema.oneOf;
      if (!variants) throw new Error('plan-schema: the stage schema is no longer a oneOf of objects');
      const objects = { oneOf: variants };
      delete ctx.jsonSchema.oneOf;
      ctx.jsonSchema.anyOf = [{ type: 'string', enum: bareStageNames(objects as Json) }, objects];
    },
  }) as Json;
  const defs = json.$defs as Record<string, Json>;
  for (const name of ['Disk', 'Defaults', 'Retry']) describeFields(defs[name]);
  const [document] = json.anyOf as Json[];
  describeFields(document);
  return {
    $schema: json.$schema,
    $id: 'https://github.com/guestkit/guestkit/raw/main/schema/plan.schema.json',
    title: 'guestkit pipeline plan',
    description: 'A plan for `guestkit pipeline run`: an object with a "disks" array (and optional settings), or a bare array of disks.',
    ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== '$schema')),
  };
}

export function planJsonSchemaText(): string {
  return `${JSON.stringify(planJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(PLAN_SCHEMA_PATH, planJsonSchemaText());
  process.stdout.write(`wrote ${PLAN_SCHEMA_PATH}\n`);
}
