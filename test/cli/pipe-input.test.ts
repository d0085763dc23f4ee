/**
 * An image on standard input converts to the same bytes as the same image from a file, whatever
 * its format: formats that cannot be read in one pass are spooled, and the spooled file is
 * detected again with its tail, so a format whose mark is at the end (a fixed VHD's footer) is
 * never taken for raw data with its footer appended.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { byName, qemuName } from '../../src/formats/registry.js';
import { guestkit } from '../helpers/cli.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('pipe-input');
const SIZE = 3 * 1024 * 1024;

/** Data, a hole, data again, and a tail that is not zero, so a footer read as data would show. */
function sourceImage(): string {
  const bytes = new Uint8Array(SIZE);
  bytes.set(pseudoRandom(512 * 1024, 7), 0);
  bytes.set(pseudoRandom(256 * 1024, 8), SIZE - 256 * 1024);
  const path = join(dir, 'source.raw');
  writeFileSync(path, bytes);
  return path;
}

const CASES: { format: string; options?: string }[] = [
  { format: 'vhd', options: 'subformat=fixed' },
  { format: 'vhd', options: 'subformat=dynamic' },
  { format: 'qcow2' },
  { format: 'vdi' },
  { format: 'vdi', options: 'static=on' },
  { format: 'vmdk', options: 'subformat=streamOptimized' },
  { format: 'vmdk', options: 'subformat=monolithicSparse' },
  { format: 'raw' },
];

describe('an image on standard input', () => {
  const source = sourceImage();
  const expected = readFileSync(source);

  for (const c of CASES) {
    const label = `${c.format}${c.options ? ` (${c.options})` : ''}`;
    it(`${label}: detected and converted from a pipe as from its file, with and without -f`, async () => {
      const image = join(dir, `in-${c.format}-${c.options ?? 'default'}.img`);
      await convert({ source, output: image, format: c.format, options: c.options, force: true });
      const bytes = readFileSync(image);
      const fromFile = join(dir, 'from-file.raw');
      expect(guestkit(['convert', '--force', '-O', 'raw', image, fromFile]).status).toBe(0);
      // Formats that round the size (VHD's geometry) pad with zeros; the source's bytes come first.
      const fileOut = readFileSync(fromFile);
      expect(fileOut.subarray(0, SIZE).equals(expected)).toBe(true);

      for (const named of [undefined, qemuName(byName(c.format).name)]) {
        const out = join(dir, 'from-pipe.raw');
        const r = guestkit(['convert', '--force', ...(named ? ['-f', named] : []), '-O', 'raw', '-', out], { input: bytes });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const pipeOut = readFileSync(out);
        expect(pipeOut.length).toBe(fileOut.length);
        expect(pipeOut.equals(fileOut)).toBe(true);
      }
    });
  }
});
