import { mapImage, type MapEntry } from '../api/map.js';
import { UsageError } from '../errors.js';
import { outputMode } from './output.js';

const hex = (n: number) => `0x${n.toString(16)}`;

export async function run(image: string | undefined, opts: { json?: boolean; output?: string; format?: string; allowOutside?: boolean; disk?: string }): Promise<void> {
  if (!image) throw new UsageError('no image given: guestkit map IMAGE');
  const json = outputMode(opts) === 'json';
  // Streamed line by line: a fragmented image's map can be long.
  let first = true;
  if (!json) process.stdout.write(`${'Offset'.padEnd(16)}${'Length'.padEnd(16)}${'Mapped to'.padEnd(16)}File\n`);
  // Human mode only: JSON output stays exactly qemu-img's shape, on stdout.
  const onNotes = (notes: string[]) => {
    if (!json) for (const n of notes) process.stderr.write(`guestkit: note: ${n}\n`);
  };
  for await (const e of mapImage(image, { format: opts.format, allowOutside: opts.allowOutside, onNotes, disk: opts.disk })) {
    if (json) {
      process.stdout.write(`${first ? '[' : ',\n'}${jsonLine(e)}`);
      first = false;
    } else if (e.data && e.offset !== undefined) {
      process.stdout.write(`${hex(e.start).padEnd(16)}${hex(e.length).padEnd(16)}${hex(e.offset).padEnd(16)}${image}\n`);
    }
  }
  if (json) process.stdout.write(first ? '[]\n' : ']\n');
}

function jsonLine(e: MapEntry): string {
  const parts = [`"start": ${e.start}`, `"length": ${e.length}`, `"depth": ${e.depth}`, `"present": ${e.present}`, `"zero": ${e.zero}`, `"data": ${e.data}`];
  if (e.offset !== undefined) parts.push(`"offset": ${e.offset}`);
  return `{ ${parts.join(', ')}}`;
}
