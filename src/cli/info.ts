import { imageInfo, imageInfoChain, type QemuStyleInfo } from '../api/info.js';
import { UsageError } from '../errors.js';
import { humanSize, outputMode, printJson } from './output.js';
import { humanOva, ovaInfoIfOva } from '../ova/describe.js';

function flatten(data: Record<string, unknown>, indent: string, lines: string[]): void {
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      lines.push(`${indent}${k}:`);
      for (const item of v) {
        if (item && typeof item === 'object') {
          const sub: string[] = [];
          flatten(item as Record<string, unknown>, `${indent}    `, sub);
          if (sub.length) sub[0] = `${indent}  - ${sub[0].trimStart()}`;
          lines.push(...sub);
        } else lines.push(`${indent}  - ${String(item)}`);
      }
    } else if (v && typeof v === 'object') {
      lines.push(`${indent}${k}:`);
      flatten(v as Record<string, unknown>, `${indent}    `, lines);
    } else lines.push(`${indent}${k}: ${String(v)}`);
  }
}

export function humanInfo(i: QemuStyleInfo): string {
  const lines = [
    `image: ${i.filename}`,
    `file format: ${i.format}${i.subformat ? ` (${i.subformat})` : ''}`,
    `virtual size: ${humanSize(i['virtual-size'])} (${i['virtual-size']} bytes)`,
  ];
  if (i['actual-size'] !== undefined) lines.push(`disk size: ${humanSize(i['actual-size'])}`);
  if (i['cluster-size'] !== undefined) lines.push(`cluster_size: ${i['cluster-size']}`);
  if (i['backing-filename']) {
    lines.push(`backing file: ${i['backing-filename']}${i['full-backing-filename'] && i['full-backing-filename'] !== i['backing-filename'] ? ` (actual path: ${i['full-backing-filename']})` : ''}`);
  }
  if (i['backing-filename-format']) lines.push(`backing file format: ${i['backing-filename-format']}`);
  if (i['dirty-flag']) lines.push('dirty flag: yes');
  if (i.snapshots?.length) {
    lines.push('Snapshot list:', 'ID        TAG               VM SIZE                DATE     VM CLOCK');
    for (const s of i.snapshots) {
      const date = new Date(Number(s['date-sec']) * 1000).toISOString().replace('T', ' ').slice(0, 19);
      lines.push(`${String(s.id).padEnd(10)}${String(s.name).padEnd(18)}${humanSize(Number(s['vm-state-size'])).padStart(7)} ${date}`);
    }
  }
  if (i['format-specific']) {
    lines.push('Format specific information:');
    flatten(i['format-specific'].data, '    ', lines);
  }
  for (const w of i.warnings ?? []) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

export async function run(
  image: string | undefined,
  opts: { json?: boolean; output?: string; format?: string; allowOutside?: boolean; backingChain?: boolean; disk?: string },
): Promise<void> {
  if (!image) throw new UsageError('no image given: guestkit info IMAGE');
  const mode = outputMode(opts);
  if (opts.backingChain) {
    const chain = await imageInfoChain(image, { format: opts.format, allowOutside: opts.allowOutside });
    if (mode === 'json') printJson(chain);
    else process.stdout.write(chain.map(humanInfo).join('\n'));
    return;
  }
  if ((!opts.format || opts.format === 'ova') && opts.disk === undefined) {
    const ova = await ovaInfoIfOva(image);
    if (ova) {
      if (mode === 'json') printJson(ova);
      else process.stdout.write(humanOva(ova));
      return;
    }
  }
  const info = await imageInfo(image, { format: opts.format, allowOutside: opts.allowOutside, disk: opts.disk });
  if (mode === 'json') printJson(info);
  else process.stdout.write(humanInfo(info));
}
