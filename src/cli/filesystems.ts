/**
 * `guestkit filesystems IMAGE...`: what `virt-filesystems -a IMAGE...` prints, with its options,
 * its columns (Name Type VFS Label MBR Size Parent UUID), its alignment and its CSV; plus
 * `--output json`, a list of objects keyed by those columns in lower case.
 */
import { UsageError } from '../errors.js';
import { openGuest } from '../guest/guest.js';
import { ALL_ROWS, filesystemRows, type FilesystemRow, type RowSelection } from '../guest/rows.js';
import { outputMode, printJson } from './output.js';

export interface FilesystemsOptions {
  all?: boolean;
  extra?: boolean;
  filesystems?: boolean;
  partitions?: boolean;
  blockDevices?: boolean;
  lvs?: boolean;
  vgs?: boolean;
  pvs?: boolean;
  /** commander names the `--lvs, --logical-volumes` flags after the last one. */
  logicalVolumes?: boolean;
  volumeGroups?: boolean;
  physicalVolumes?: boolean;
  long?: boolean;
  uuid?: boolean;
  title?: boolean;
  csv?: boolean;
  humanReadable?: boolean;
  output?: string;
  json?: boolean;
  format?: string;
  allowOutside?: boolean;
}

const COLUMNS = ['name', 'type', 'vfs', 'label', 'mbr', 'size', 'parent', 'uuid'] as const;
type Column = (typeof COLUMNS)[number];
const TITLES: Record<Column, string> = { name: 'Name', type: 'Type', vfs: 'VFS', label: 'Label', mbr: 'MBR', size: 'Size', parent: 'Parent', uuid: 'UUID' };

/** virt-filesystems's choice of rows: nothing selected means --filesystems. */
export function selection(o: FilesystemsOptions): RowSelection {
  if (o.all) return ALL_ROWS;
  const s: RowSelection = {
    filesystems: Boolean(o.filesystems || o.extra),
    extra: Boolean(o.extra),
    partitions: Boolean(o.partitions),
    blockDevices: Boolean(o.blockDevices),
    lvs: Boolean(o.lvs || o.logicalVolumes),
    vgs: Boolean(o.vgs || o.volumeGroups),
    pvs: Boolean(o.pvs || o.physicalVolumes),
  };
  if (!Object.values(s).some(Boolean)) s.filesystems = true;
  return s;
}

/** Its choice of columns: the name alone, or in --long mode the ones that make sense for the rows asked. */
export function columns(o: FilesystemsOptions, s: RowSelection): Column[] {
  if (!o.long) return ['name'];
  const c: Column[] = ['name', 'type'];
  if (s.filesystems) c.push('vfs', 'label');
  if (s.partitions) c.push('mbr');
  c.push('size');
  if (s.partitions || s.lvs) c.push('parent');
  if (o.uuid) c.push('uuid');
  return c;
}

/** gnulib human_readable with autoscale, base 1024 and SI letters: 512, 1.0K, 16M, 2.5G. */
export function humanSize(n: number): string {
  const units = ['K', 'M', 'G', 'T', 'P', 'E'];
  if (n < 1024) return String(n);
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (v < 10) {
    const r = Math.round(v * 10) / 10;
    return r >= 10 ? `10${units[i]}` : `${r.toFixed(1)}${units[i]}`;
  }
  const r = Math.round(v);
  return r >= 1024 && i < units.length - 1 ? `1.0${units[i + 1]}` : `${r}${units[i]}`;
}

function cell(r: FilesystemRow, c: Column, human: boolean): string | null {
  if (c === 'size') return human ? humanSize(r.size) : String(r.size);
  return r[c];
}

/** Text mode: columns padded to the widest cell, two spaces apart unless that passes 72 characters; empty cells print "-". */
export function formatText(cells: (string | null)[][]): string {
  const n = Math.max(0, ...cells.map((r) => r.length));
  const width = Array.from({ length: n }, (_, j) => Math.max(0, ...cells.map((r) => (r[j] == null ? 0 : Math.max(1, r[j]!.length)))));
  const gap = width.reduce((s, w) => s + w + 2, 0) > 72 ? 1 : 2;
  const lines = cells.map((r) => {
    let line = '';
    let pad = 0;
    for (let j = 0; j < n; j++) {
      if (width[j] === 0) continue;
      line += ' '.repeat(pad);
      const text = r[j] == null || r[j] === '' ? '-' : r[j]!;
      line += text;
      pad = width[j] - text.length + gap;
    }
    return `${line}\n`;
  });
  return lines.join('');
}

function csvField(s: string | null): string {
  if (s == null) return '';
  return /[ ",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function run(images: string[], opts: FilesystemsOptions): Promise<void> {
  if (!images.length) throw new UsageError('no disk image given: guestkit filesystems IMAGE...');
  if (opts.humanReadable && opts.csv) throw new UsageError('you cannot use -h and --csv options together');
  const guest = await openGuest(images, { format: opts.format, allowOutside: opts.allowOutside });
  try {
    for (const w of guest.warnings) process.stderr.write(`guestkit: warning: ${w}\n`);
    const sel = selection(opts);
    const rows = filesystemRows(guest, sel);
    if (outputMode(opts) === 'json') {
      printJson(rows);
      return;
    }
    const cols = columns(opts, sel);
    const cells = rows.map((r) => cols.map((c) => cell(r, c, Boolean(opts.humanReadable))));
    if (opts.csv) {
      process.stdout.write(cells.map((r) => `${r.map(csvField).join(',')}\n`).join(''));
      return;
    }
    const title = opts.long && opts.title !== false ? [cols.map((c) => TITLES[c])] : [];
    process.stdout.write(formatText([...title, ...cells]));
  } finally {
    await guest.close();
  }
}
