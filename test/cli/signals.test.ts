/**
 * SIGTERM and SIGINT end the CLI promptly whatever it is doing, and an image whose backing file
 * is a FIFO nobody writes to is refused at once instead of hanging. The old handler called
 * process.exit(), which joins libuv's threads: one blocked in open() of a FIFO kept the process
 * alive until SIGKILL.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { guestkit } from '../helpers/cli.js';
import { qcow2Naming } from '../helpers/named-files.js';
import { workDir } from '../helpers/work.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/cli/bin.js');
const dir = workDir('signals');
execFileSync('mkfifo', [join(dir, 'fifo')]);

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function ended(child: ChildProcess): Promise<Ended> {
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
}

/** Waits for `child` to print `text` on stdout. */
function printed(child: ChildProcess, text: string): Promise<void> {
  let out = '';
  return new Promise((resolve) => child.stdout!.on('data', (b: Buffer) => (out += b.toString()).includes(text) && resolve()));
}

/** Sends `sig` and measures how long the process takes to end; SIGKILL after 10 s so a hang cannot outlive the test. */
async function stop(child: ChildProcess, done: Promise<Ended>, sig: NodeJS.Signals): Promise<Ended & { ms: number }> {
  const t0 = performance.now();
  child.kill(sig);
  const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const r = await done;
  clearTimeout(guard);
  return { ...r, ms: performance.now() - t0 };
}

describe('signals and FIFOs', () => {
  it('info on an image whose backing file is a FIFO with no writer fails at once with a message', async () => {
    writeFileSync(join(dir, 'top.qcow2'), qcow2Naming({ backing: 'fifo' }));
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'info', join(dir, 'top.qcow2')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const r = await ended(child);
    clearTimeout(guard);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fifo: is a FIFO \(named pipe\), not a regular file or block device/);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it("convert with a FIFO as SRC is refused at once and points at '-', through which the same bytes convert", () => {
    const out = join(dir, 'from-fifo.raw');
    const refused = guestkit(['convert', '-O', 'raw', join(dir, 'fifo'), out]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/fifo: is a FIFO \(named pipe\).*only as '-', standard input/);
    expect(readdirSync(dir).filter((f) => f.includes('from-fifo'))).toEqual([]);
    const data = Buffer.alloc(1 << 20, 0x6b);
    const piped = guestkit(['convert', '-f', 'raw', '-O', 'raw', '-', out], { input: data });
    expect(piped.status, piped.stderr).toBe(0);
    expect(readFileSync(out).equals(data)).toBe(true);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} ends the process within a second even while a libuv thread is blocked in open()`, async () => {
      // The cleanup handlers of the CLI, and an open() that blocks its thread for ever.
      const script = [
        `import { installCleanupHandlers } from ${JSON.stringify(join(ROOT, 'dist/stream/atomic.js'))};`,
        `import { open } from 'node:fs/promises';`,
        'installCleanupHandlers();',
        `open(${JSON.stringify(join(dir, 'fifo'))}, 'r');`,
        `setTimeout(() => process.stdout.write('ready\\n'), 200);`,
        'setInterval(() => {}, 1000);',
      ].join('\n');
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      const done = ended(child);
      await printed(child, 'ready');
      const r = await stop(child, done, sig);
      expect(r.signal).toBe(sig);
      expect(r.ms).toBeLessThan(1000);
    });
  }

  it('SIGTERM during a conversion ends it within a second and leaves no file behind', async () => {
    const out = join(dir, 'out.qcow2');
    const child = spawn(process.execPath, [CLI, 'convert', '-p', '-f', 'raw', '-O', 'qcow2', '-', out], { stdio: ['pipe', 'pipe', 'pipe'] });
    const done = ended(child);
    // The input never ends: the conversion is busy until it is stopped.
    child.stdin!.on('error', () => {});
    child.stdin!.write(Buffer.alloc(4 << 20, 0x5a));
    await new Promise((r) => setTimeout(r, 1500));
    const r = await stop(child, done, 'SIGTERM');
    expect(r.signal).toBe('SIGTERM');
    expect(r.ms).toBeLessThan(1000);
    expect(readdirSync(dir).filter((f) => f.startsWith('out.qcow2') || f.startsWith('.out.qcow2'))).toEqual([]);
  });
});
