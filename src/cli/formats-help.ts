/**
 * The formats table of `--help`, written from the registry: a new driver appears here, with what
 * it can do, by being registered. Loaded only when help is asked for, so other commands start
 * without the format code.
 */
import type { FormatDriver } from '../formats/types.js';

const yes = (b: boolean): string => (b ? 'yes' : '-');

const COLUMNS: { title: string; value: (d: FormatDriver) => string }[] = [
  { title: 'read', value: (d) => yes(d.capabilities.read) },
  { title: 'write', value: (d) => yes(d.capabilities.write && d.create !== undefined) },
  { title: 'pipe-in', value: (d) => (!d.capabilities.read ? '-' : d.capabilities.streamRead ? 'yes' : 'spool') },
  { title: 'pipe-out', value: (d) => yes(d.capabilities.streamWrite) },
  { title: '-c', value: (d) => yes(d.capabilities.compression) },
  { title: '-B', value: (d) => yes(d.capabilities.backing && d.capabilities.write) },
  { title: 'resize', value: (d) => yes(d.resize !== undefined) },
  { title: 'check', value: (d) => yes(d.check !== undefined) },
];

export function formatsHelp(list: readonly FormatDriver[]): string {
  const names = list.map((d) => (d.qemuName ? `${d.name} (${d.qemuName})` : d.name));
  const width = Math.max(...names.map((n) => n.length), 'format'.length) + 2;
  const cell = (text: string, title: string): string => text.padEnd(Math.max(title.length, 5) + 1);
  const header = `  ${'format'.padEnd(width)}${COLUMNS.map((c) => cell(c.title, c.title)).join('')} description`;
  const rows = list.map((d, i) => `  ${names[i].padEnd(width)}${COLUMNS.map((c) => cell(c.value(d), c.title)).join('')} ${d.description}`);
  return [
    '',
    "Formats (a name in parentheses is qemu-img's, accepted too). pipe-in: read from standard input",
    '(spool: through a temporary file); pipe-out: written to standard output; -c: compressed; -B: overlays.',
    header,
    ...rows,
  ].join('\n');
}
