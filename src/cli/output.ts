/** Text and JSON output shared by the commands. */

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

/** Accepts --json, --output json and --output=json alike. */
export function outputMode(opts: { json?: boolean; output?: string }): OutputMode {
  if (opts.json) return 'json';
  return opts.output === 'json' ? 'json' : 'human';
}
