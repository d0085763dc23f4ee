/** Text and JSON output shared by the commands. */
import { UsageError } from '../errors.js';

export function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2))} ${units[i]}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 4)}\n`);
}

export type OutputMode = 'human' | 'json';

/**
 * An --output value other than human or json. qemu-img refuses it with this message and exit
 * code 1 (not our usual 2 for usage errors), and scripts written for it may test for that.
 */
export class OutputFormatError extends UsageError {
  readonly exitCode = 1;
  constructor() {
    super('--output must be used with human or json as argument.');
  }
}

/** Accepts --json, --output json and --output=json alike; refuses any other --output (xml, yaml…). */
export function outputMode(opts: { json?: boolean; output?: string }): OutputMode {
  if (opts.output !== undefined && opts.output !== 'human' && opts.output !== 'json') throw new OutputFormatError();
  if (opts.json) return 'json';
  return opts.output === 'json' ? 'json' : 'human';
}
