/**
 * The runner through the library API, on real files: bounded concurrency, retries of transient
 * failures, failures that stay with their disk, resume after an interruption, copy-to.
 */
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File, workDir } from '../helpers/work.js';
import { runPipeline, type PipelineEvent } from '../../src/api/pipeline.js';
import { IoError, CorruptImageError } from '../../src/errors.js';
import { checksumImage } from '../../src/api/checksum.js';
import { defaultOperations, type StageOperations } from '../../src/pipeline/stages.js';
import { makeSparseDisk } from './helpers.js';

const root = workDir('pipeline-runner');
let caseNo = 0;

/** A folder with `n` small sparse raw disks d0.img … and a plan converting each to out/dN.raw. */
function setup(n: number, stages: unknown[] = ['detect', 'convert', 'verify', 'checksum']) {
  const dir = join(root, `case${caseNo++}`);
  mkdirSync(join(dir, 'out'), { recursive: true });
  for (let i = 0; i < n; i++) makeSparseDisk(join(dir, `d${i}.img`), 64 * 1024 * (1 + (i % 4)), i + 1);
  const disks = Array.from({ length: n }, (_, i) => ({ id: `disk-${i}`, source: `d${i}.img`, output: `out/d${i}.raw`, stages }));
  return { dir, plan: { disks }, statePath: join(dir, 'state.jsonl') };
}

function collect() {
  const events: PipelineEvent[] = [];
  return { events, onEvent: (e: PipelineEvent) => events.push(e) };
}

const transient = (what: string) => new IoError(`${what} failed: EAGAIN (resource temporarily unavailable)`, { errno: 'EAGAIN' });

describe('pipeline runner', () => {
  it('keeps at most `concurrency` disks in flight, and uses all of them', async () => {
    const { dir, plan } = setup(12, ['convert']);
    let inFlight = 0;
    let peak = 0;
    const convert: StageOperations['convert'] = async (o) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        // Long enough for the other workers to pick up their disks.
        await new Promise((r) => setTimeout(r, 15));
        return await defaultOperations.convert(o);
      } finally {
        inFlight--;
      }
    };
    const summary = await runPipeline(plan, { baseDir: dir, concurrency: 3, operations: { convert } });
    expect(summary).toMatchObject({ total: 12, succeeded: 12, failed: 0 });
    expect(peak).toBe(3);
  });

  it('retries a stage that fails transiently, with growing backoff, and the disk succeeds', async () => {
    const { dir, plan } = setup(3);
    let calls = 0;
    const convert: StageOperations['convert'] = async (o) => {
      if (o.source.endsWith('d1.img') && calls++ < 2) throw transient('write');
      return defaultOperations.convert(o);
    };
    const delays: number[] = [];
    const { events, onEvent } = collect();
    const summary = await runPipeline(
      { ...plan, retry: { attempts: 3, baseDelayMs: 40, maxDelayMs: 1000 } },
      { baseDir: dir, onEvent, operations: { convert }, retryTiming: { sleep: async (ms) => void delays.push(ms), random: () => 0.999 } },
    );
    expect(summary).toMatchObject({ succeeded: 3, failed: 0 });
    // Full jitter with random≈1: just under base·2^(attempt-1).
    expect(delays).toEqual([39, 79]);
    const retries = events.filter((e) => e.type === 'retry');
    expect(retries).toMatchObject([
      { disk: 'disk-1', stage: 'convert', attempt: 1, delayMs: 39, error: { code: 'EAGAIN', error: 'IoError', message: expect.stringMatching(/EAGAIN/) } },
      { disk: 'disk-1', stage: 'convert', attempt: 2, delayMs: 79 },
    ]);
    expect(await checksumImage(join(dir, 'out/d1.raw'))).toBe(await checksumImage(join(dir, 'd1.img')));
  });

  it('gives up after the last attempt, and does not retry permanent errors', async () => {
    const { dir, plan } = setup(3, ['convert', 'verify']);
    const convert: StageOperations['convert'] = async (o) => {
      if (o.source.endsWith('d0.img')) throw transient('read');
      return defaultOperations.convert(o);
    };
    let compares = 0;
    const compareImages: StageOperations['compareImages'] = async (a, b, o) => {
      if (a.endsWith('d2.img')) {
        compares++;
        throw new CorruptImageError('L2 table offset is not aligned', { file: b, offset: 4096 });
      }
      return defaultOperations.compareImages(a, b, o);
    };
    const { events, onEvent } = collect();
    const summary = await runPipeline(
      { ...plan, retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 } },
      { baseDir: dir, onEvent, operations: { convert, compareImages } },
    );
    expect(summary).toMatchObject({ total: 3, succeeded: 1, failed: 2 });
    expect(summary.failures).toEqual([
      { disk: 'disk-0', index: 0, stage: 'convert', message: expect.stringMatching(/EAGAIN/) },
      { disk: 'disk-2', index: 2, stage: 'verify', message: expect.stringMatching(/L2 table offset/) },
    ]);
    expect(events.filter((e) => e.type === 'retry' && e.disk === 'disk-0')).toHaveLength(3);
    expect(events.find((e) => e.type === 'disk-failed' && e.disk === 'disk-0')).toMatchObject({ attempts: 4 });
    expect(events.find((e) => e.type === 'disk-failed' && e.disk === 'disk-2')).toMatchObject({ attempts: 1, error: { code: 'ECORRUPT', offset: 4096 } });
    expect(compares).toBe(1);
    // The atomic output left nothing behind for the disk whose conversion never succeeded.
    expect(existsSync(join(dir, 'out/d0.raw'))).toBe(false);
  });

  it('reports a verify mismatch as a failure of that disk with the offset', async () => {
    const { dir, plan } = setup(2, ['convert', 'verify']);
    const convert: StageOperations['convert'] = async (o) => {
      const r = await defaultOperations.convert(o);
      // Damage one output after it is written, as a buggy writer would.
      if (o.source.endsWith('d1.img')) writeFileSync(o.output, Buffer.from([readFileSync(o.output)[0] ^ 0xff]), { flag: 'r+' });
      return r;
    };
    const { events, onEvent } = collect();
    const summary = await runPipeline(plan, { baseDir: dir, onEvent, operations: { convert } });
    expect(summary.failures).toEqual([{ disk: 'disk-1', index: 1, stage: 'verify', message: expect.stringMatching(/Content mismatch at offset 0!/) }]);
    expect(events.find((e) => e.type === 'disk-failed')).toMatchObject({ error: { code: 'EVERIFY', offset: 0 } });
  });

  it('resumes an interrupted run: finished disks are skipped, the rest run', async () => {
    const { dir, plan, statePath } = setup(10);
    const stop = new AbortController();
    let finished = 0;
    const first = await runPipeline(plan, {
      baseDir: dir,
      statePath,
      concurrency: 2,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'disk-finished' && ++finished === 4) stop.abort();
      },
    });
    expect(first.aborted).toBe(true);
    expect(first.succeeded).toBeGreaterThanOrEqual(4);
    expect(first.succeeded).toBeLessThan(10);
    const doneFirst = first.succeeded;

    const { events, onEvent } = collect();
    const second = await runPipeline(plan, { baseDir: dir, statePath, resume: true, onEvent });
    // Disks cancelled mid-way in the first run (reported failed then) run again cleanly.
    expect(second).toMatchObject({ total: 10, skipped: doneFirst, succeeded: 10 - doneFirst, failed: 0 });
    const rerun = events.filter((e) => e.type === 'disk-started').length;
    expect(rerun).toBe(10 - doneFirst);
    for (let i = 0; i < 10; i++) expect(sha256File(join(dir, `out/d${i}.raw`))).toBe(sha256File(join(dir, `d${i}.img`)));

    // Everything done: a third run skips all of them.
    const third = await runPipeline(plan, { baseDir: dir, statePath, resume: true });
    expect(third).toMatchObject({ skipped: 10, succeeded: 0, failed: 0 });
  });

  it('does not skip a disk whose output changed since it was recorded', async () => {
    const { dir, plan, statePath } = setup(3, ['convert', 'verify', 'checksum']);
    await runPipeline(plan, { baseDir: dir, statePath });
    const out1 = join(dir, 'out/d1.raw');
    // Same size and time, other content: only the checksum check notices.
    const st = statSync(out1);
    writeFileSync(out1, Buffer.from([readFileSync(out1)[0] ^ 0xff]), { flag: 'r+' });
    utimesSync(out1, st.atime, st.mtime);
    const quick = await runPipeline(plan, { baseDir: dir, statePath, resume: true });
    expect(quick.skipped).toBe(3);
    const thorough = await runPipeline(plan, { baseDir: dir, statePath, resume: true, resumeCheck: 'checksum' });
    expect(thorough.skipped).toBe(2);
    // The changed output is not ours any more: it is not overwritten without force.
    expect(thorough.failures).toEqual([{ disk: 'disk-1', index: 1, stage: 'convert', message: expect.stringMatching(/already exists/) }]);

    // A different size is noticed by the quick check (which still cannot see disk-1's change).
    appendFileSync(join(dir, 'out/d2.raw'), 'x');
    const again = await runPipeline(plan, { baseDir: dir, statePath, resume: true });
    expect(again).toMatchObject({ skipped: 2, failed: 1 });
    expect(again.failures.map((f) => f.disk)).toEqual(['disk-2']);
  });

  it('after a failure past convert, resume keeps the converted output and runs the later stages', async () => {
    const { dir, plan, statePath } = setup(2, ['convert', 'verify', 'checksum']);
    const failing: StageOperations['compareImages'] = async () => {
      throw new IoError('read failed: EIO (input/output error)', { errno: 'EIO' });
    };
    const first = await runPipeline(plan, { baseDir: dir, statePath, operations: { compareImages: failing } });
    expect(first.failures.map((f) => f.stage)).toEqual(['verify', 'verify']);
    const { events, onEvent } = collect();
    const second = await runPipeline(plan, { baseDir: dir, statePath, resume: true, onEvent });
    expect(second).toMatchObject({ succeeded: 2, failed: 0 });
    const convertDone = events.filter((e) => e.type === 'stage-done' && e.stage === 'convert');
    expect(convertDone).toHaveLength(2);
    for (const e of convertDone) expect(e).toMatchObject({ skipped: expect.stringMatching(/earlier run/) });
    expect(events.filter((e) => e.type === 'stage-done' && e.stage === 'verify')).toHaveLength(2);
  });

  it('a changed disk definition invalidates its record', async () => {
    const { dir, plan, statePath } = setup(2, ['convert']);
    await runPipeline(plan, { baseDir: dir, statePath });
    const changed = { disks: [plan.disks[0], { ...plan.disks[1], stages: ['convert', 'checksum'] }] };
    const r = await runPipeline(changed, { baseDir: dir, statePath, resume: true });
    expect(r.skipped).toBe(1);
    expect(r.failures.map((f) => f.disk)).toEqual(['disk-1']);
  });

  it('copy-to copies the verified output atomically and keeps it sparse', async () => {
    const { dir, plan } = setup(2, ['convert', 'verify', { type: 'copy-to', dir: 'backup' }, 'checksum']);
    const { events, onEvent } = collect();
    const summary = await runPipeline(plan, { baseDir: dir, onEvent });
    expect(summary).toMatchObject({ succeeded: 2, failed: 0 });
    for (let i = 0; i < 2; i++) {
      const copy = join(dir, `backup/d${i}.raw`);
      expect(readFileSync(copy).equals(readFileSync(join(dir, `d${i}.img`)))).toBe(true);
      const st = statSync(copy);
      // 6 KiB of data in 64–128 KiB: the holes stayed holes.
      expect(st.blocks * 512).toBeLessThan(st.size);
    }
    expect(events.find((e) => e.type === 'disk-finished' && e.disk === 'disk-0')).toMatchObject({ copies: [join(dir, 'backup/d0.raw')] });
    // Run again: the outputs exist now, so each disk fails on convert and no copy is touched.
    const again = await runPipeline(plan, { baseDir: dir });
    expect(again.failed).toBe(2);
  });

  it('refuses a second run on the same state file while the first holds its lock', async () => {
    const { dir, plan, statePath } = setup(1, ['convert']);
    writeFileSync(`${statePath}.lock`, `${process.pid}\n`);
    await expect(runPipeline(plan, { baseDir: dir, statePath })).rejects.toThrow(/another pipeline run/);
    // A lock left by a process that is gone is taken over.
    writeFileSync(`${statePath}.lock`, '2147483646\n');
    await expect(runPipeline(plan, { baseDir: dir, statePath })).resolves.toMatchObject({ succeeded: 1 });
    expect(existsSync(`${statePath}.lock`)).toBe(false);
  });

  it('ignores a torn last line in the state file', async () => {
    const { dir, plan, statePath } = setup(2, ['convert']);
    await runPipeline(plan, { baseDir: dir, statePath });
    appendFileSync(statePath, '{"disk":"disk-1","fp":"');
    const r = await runPipeline(plan, { baseDir: dir, statePath, resume: true });
    expect(r.skipped).toBe(2);
    // Compaction rewrote the file: one complete record per disk.
    const records = readFileSync(statePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => `${r.disk} ${r.status}`).sort()).toEqual(['disk-0 done', 'disk-1 done']);
  });
});
