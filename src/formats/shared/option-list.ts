/**
 * A driver's `-o` options as a list, read from its zod schema (through zod's JSON Schema view),
 * so `-o help`, the message for an unknown key and the tests that vary options all follow the
 * schema rather than a second list of names that could drift from it.
 */
import * as z from 'zod';

export interface OptionField {
  name: string;
  /** 'string', 'integer', 'boolean'… as JSON Schema names it. */
  type: string;
  /** The accepted values, when the option is an enumeration. */
  values?: readonly (string | number | boolean)[];
  default?: unknown;
  description?: string;
}

interface JsonProp {
  type?: string;
  enum?: (string | number | boolean)[];
  const?: string | number | boolean;
  default?: unknown;
  description?: string;
}

export function optionFields(schema: z.ZodType | undefined): OptionField[] {
  if (!schema) return [];
  // Preprocessing (on/off booleans, sizes with suffixes) cannot be expressed in JSON Schema; the
  // input side of the pipe still says what the option is.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonProp> };
  return Object.entries(json.properties ?? {}).map(([name, p]) => ({
    name,
    type: p.type ?? (p.const !== undefined ? typeof p.const : 'string'),
    ...(p.enum ? { values: p.enum } : p.const !== undefined ? { values: [p.const] } : {}),
    ...(p.default !== undefined ? { default: p.default } : {}),
    ...(p.description ? { description: p.description } : {}),
  }));
}

/** qemu-img's `-o help` listing: one option a line, with its values, default and meaning. */
export function formatOptionHelp(format: string, fields: OptionField[]): string {
  if (!fields.length) return `Format ${format} takes no options.\n`;
  const rows = fields.map((f) => {
    const kind = f.values ? f.values.join('|') : f.type === 'boolean' ? 'on|off' : `<${f.type === 'integer' ? 'num' : 'str'}>`;
    const left = `  ${f.name}=${kind}`;
    const right = [f.description, f.default !== undefined ? `(default: ${String(f.default)})` : undefined].filter(Boolean).join(' ');
    return [left, right] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return `Supported ${format} options:\n${rows.map(([l, r]) => (r ? `${l.padEnd(width)}- ${r}` : l)).join('\n')}\n`;
}
