import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { AtomicOutput } from '../../src/stream/atomic.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { fileURLToPath } from 'node:url';

const dir = workDir('atomic');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('atomic output', () => {
  it('never shows the final name before commit, and discard removes the temporary file', async () => {
    const dst = join(dir, 'a.img');
    const { output, sink } = await AtomicOutput.create(dst);
    await sink.write(0, new Uint8Array([1, 2, 3]));
    expect(existsSync(dst)).toBe(false);
    expect(readdirSync(dir).some((f) => f.startsWith('.a.img.guestkit-'))).toBe(true);
    await output.discard();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('leaves no output when the source fails half-way', async () => {
    const src = join(dir, 'src.raw');
    writeFileSync(src, pseudoRandom(4 << 20, 1));
    const dst = join(dir, 'fail.raw');
    const ac = new AbortController();
    let n = 0;
    await expect(
      convert({
        source: src,
        output: dst,
        onProgress: () => {
          if (++n === 1) ac.abort();
        },
        signal: ac.signal,
      }),
    ).rejects.toMatchObject({ name: 'AbortedError' });
    expect(readdirSync(dir).filter((f) => f !== 'src.raw')).toEqual([]);
  });

  it('a conversion killed with SIGKILL leaves nothing under the destination name', async () => {
    const src = join(dir, 'big.raw');
    writeFileSync(src, pseudoRandom(64 << 20, 7));
    const dst = join(dir, 'killed.raw');
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'src/cli/bin.ts'), 'convert', '-p', src, dst], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Kill as soon as the copy reports progress.
    await new Promise<void>((resolve) => child.stderr!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(dst)).toBe(false);
  });
});
