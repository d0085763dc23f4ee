/**
 * The steps of a run, one at a time, without files: settings, one disk's stages and failures,
 * the tally. (runner.test.ts runs whole plans on real files.)
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CorruptImageError, IoError, UsageError } from '../../src/errors.js';
import { DEFAULT_RETRY } from '../../src/stream/retry.js';
import { runDisk, StateWriteFailure, type DiskRunContext } from '../../src/pipeline/disk-run.js';
import type { PipelineEventInput } from '../../src/pipeline/events.js';
import type { ResolvedDisk } from '../../src/pipeline/resolve.js';
import { runSettings } from '../../src/pipeline/runner.js';
import { defaultOperations, type StageOperations } from '../../src/pipeline/stages.js';
import type { ResumeState } from '../../src/pipeline/state.js';
import { MAX_LISTED_FAILURES, Tally } from '../../src/pipeline/tally.js';

const disk: ResolvedDisk = { index: 3, id: 'd3', source: '/nowhere/d3.img', compress: false, force: false, stages: [{ type: 'detect' }, { type: 'checksum' }] };

function context(ops: Partial<StageOperations>, extra: Partial<DiskRunContext> = {}) {
  const events: PipelineEventInput[] = [];
  const ctx: DiskRunContext = {
    ops: { ...defaultOperations, ...ops },
    policy: { ...DEFAULT_RETRY, attempts: 2, sleep: async () => {} },
    emit: (e) => events.push(e),
    tally: new Tally(),
    resume: false,
    resumeCheck: 'quick',
    progressIntervalMs: 0,
    ...extra,
  };
  return { ctx, events };
}

const found: Partial<StageOperations> = {
  detectFormat: async () => ({ format: 'raw' }) as never,
  checksum: async () => 'ab'.repeat(32),
};

describe('runDisk', () => {
  it('runs the stages in order and reports the disk finished', async () => {
    const { ctx, events } = context(found);
    await runDisk(disk, ctx);
    expect(events.map((e) => e.type)).toEqual(['disk-started', 'stage-started', 'stage-done', 'stage-started', 'stage-done', 'disk-finished']);
    expect(events.at(-1)).toMatchObject({ disk: 'd3', sha256: 'ab'.repeat(32) });
    expect(ctx.tally).toMatchObject({ succeeded: 1, failed: 0 });
  });

  it('keeps a failure, even a synchronous throw, to its disk: it resolves and the tally has it', async () => {
    const { ctx, events } = context({
      ...found,
      checksum: () => {
        throw new CorruptImageError('bad table', { file: disk.source, offset: 512 });
      },
    });
    await expect(runDisk(disk, ctx)).resolves.toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: 'disk-failed', stage: 'checksum', attempts: 1, error: { code: 'ECORRUPT', error: 'CorruptImageError', offset: 512 } });
    expect(ctx.tally.summary(1, 0, false).failures).toEqual([{ disk: 'd3', index: 3, stage: 'checksum', message: expect.stringMatching(/bad table/) }]);
  });

  it('retries a transient failure and counts the tries', async () => {
    let calls = 0;
    const { ctx, events } = context({
      ...found,
      detectFormat: async () => {
        if (calls++ === 0) throw new IoError('read failed: EAGAIN', { errno: 'EAGAIN' });
        return { format: 'raw' } as never;
      },
    });
    await runDisk(disk, ctx);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([{ stage: 'detect', attempt: 1, error: { code: 'EAGAIN', error: 'IoError' } }]);
    expect(ctx.tally.succeeded).toBe(1);
  });

  it('stops the run (throws) only when the resume state cannot be written', async () => {
    const state = { lookup: () => undefined, record: async () => Promise.reject(new IoError('write state failed: ENOSPC', { errno: 'ENOSPC' })) } as unknown as ResumeState;
    const { ctx } = context(found, { state });
    // A file that exists, so proving it works and the record is what fails.
    const here = fileURLToPath(import.meta.url);
    await expect(runDisk({ ...disk, source: here, stages: [{ type: 'detect' }] }, ctx)).rejects.toBeInstanceOf(StateWriteFailure);
    // A file that vanished before it could be proven fails only its disk.
    const { ctx: ctx2, events } = context(found, { state });
    await expect(runDisk({ ...disk, stages: [{ type: 'detect' }] }, ctx2)).resolves.toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: 'disk-failed', stage: 'detect', error: { code: 'ENOENT' } });
  });
});

describe('runSettings and Tally', () => {
  const plan = { header: { concurrency: 3, retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 2 } }, diskCount: 1 };

  it('takes concurrency from the options over the plan, and refuses nonsense', () => {
    expect(runSettings(plan, {})).toMatchObject({ concurrency: 3, policy: { attempts: 5 } });
    expect(runSettings(plan, { concurrency: 7 }).concurrency).toBe(7);
    expect(() => runSettings(plan, { concurrency: 0 })).toThrow(UsageError);
    expect(() => runSettings(plan, { resume: true })).toThrow(/state file/);
  });

  it('lists failures in plan order, up to the cap', () => {
    const t = new Tally();
    for (let i = MAX_LISTED_FAILURES + 2; i > 0; i--) t.fail({ disk: `d${i}`, index: i, stage: 'convert', message: 'x'.repeat(10_000) });
    const s = t.summary(MAX_LISTED_FAILURES + 2, 1, false);
    expect(s.failures).toHaveLength(MAX_LISTED_FAILURES);
    expect(s.unlisted).toBe(2);
    expect(s.failures[0].index).toBeLessThan(s.failures[1].index);
    expect(s.failures[0].message.length).toBeLessThan(600);
  });
});
