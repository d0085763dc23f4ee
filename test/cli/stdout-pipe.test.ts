/**
 * A reader that closes stdout early: fine for text (`map | head` exits 0), a failure for an image
 * (`convert … - | head -c 100` exits 1 with one line), since the image it got is cut short.
 * The pipes are real: the test reads a little of the child's stdout, then closes its end.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { StreamSink } from '../../src/stream/sink.js';
import { IoError } from '../../src/errors.js';
import { CLI_ARGS } from '../helpers/cli.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('stdout-pipe');
const src = join(dir, 'src.raw');
writeFileSync(src, pseudoRandom(24 * 1024 * 1024));

/** Runs the CLI, keeps the first `keep` bytes of its stdout (all with Infinity), then closes the pipe. */
function runClosingEarly(args: string[], keep: number): Promise<{ status: number | null; stderr: string; got: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = 0;
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= keep) child.stdout.destroy();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, got }));
  });
}

describe('stdout closed by its reader', () => {
  for (const format of ['raw', 'qcow2', 'vpc', 'vmdk']) {
    it(`convert -O ${format} to a pipe closed after 100 bytes: exit 1, one line`, async () => {
      const opts = format === 'vmdk' ? ['-o', 'subformat=streamOptimized'] : [];
      const r = await runClosingEarly(['convert', '-O', format, ...opts, src, '-'], 100);
      expect(r.status).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^guestkit: <stdout>: the reader closed the pipe before the image was complete/);
    });
  }

  it('convert to a pipe read to the end: exit 0', async () => {
    const r = await runClosingEarly(['convert', '-O', 'raw', src, '-'], Infinity);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.got).toBe(24 * 1024 * 1024);
  });

  it('text output (map) to a pipe closed early: exit 0, nothing on stderr', async () => {
    // Data in every other 4 KiB cluster: a map far longer than the pipe's buffer.
    const alt = new Uint8Array(16 * 1024 * 1024);
    for (let at = 0; at < alt.length; at += 8192) alt.fill(0x5a, at, at + 4096);
    writeFileSync(join(dir, 'alt.raw'), alt);
    const many = join(dir, 'many.qcow2');
    const made = await runClosingEarly(['convert', '-O', 'qcow2', '-o', 'cluster_size=4096', join(dir, 'alt.raw'), many], Infinity);
    expect(made.status).toBe(0);
    const r = await runClosingEarly(['map', '--output=json', many], 10);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.got).toBeLessThan(2048 * 60);
  });
});

describe('StreamSink', () => {
  /** A pipe whose reader has gone: writes are accepted into the buffer, then fail with EPIPE. */
  class ClosedPipe extends Writable {
    override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
      setTimeout(() => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })), 1);
    }
  }

  it('a buffered write that fails later fails close(), and every later write', async () => {
    const pipe = new ClosedPipe({ highWaterMark: 1 << 20 });
    pipe.on('error', () => {});
    const sink = new StreamSink(pipe, '<pipe>');
    await sink.write(0, new Uint8Array(1000)); // accepted into the stream's buffer
    await expect(sink.close()).rejects.toThrow(IoError);
    await expect(sink.write(1000, new Uint8Array(10))).rejects.toThrow(/reader closed the pipe/);
  });
});
