/**
 * Memory bounded by the concurrency, not by the plan (issue 15 item 9): an entry of a plan is
 * refused while it is being parsed once it passes MAX_ENTRY_BYTES, a disk takes at most
 * MAX_OPTION_KEYS option keys, messages are cut, the summary lists at most MAX_LISTED_FAILURES
 * failures, and the tables validation keeps cost tens of bytes a disk.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workDir } from '../helpers/work.js';
import { runPipeline, validatePipelinePlan, PlanError } from '../../src/api/pipeline.js';
import { CompactIndex } from '../../src/pipeline/compact-index.js';
import { MAX_ENTRY_BYTES } from '../../src/pipeline/entry-guard.js';
import { MAX_ISSUE_MESSAGE } from '../../src/pipeline/errors.js';
import { validatePlan } from '../../src/pipeline/plan.js';
import { planFromFile } from '../../src/pipeline/plan-source.js';
import { MAX_OPTION_KEYS } from '../../src/pipeline/resolve.js';
import { MAX_LISTED_FAILURES } from '../../src/pipeline/tally.js';

const dir = workDir('pipeline-limits');

function manyKeys(n: number): string {
  return `{${Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',')}}`;
}

async function planError(p: Promise<unknown>): Promise<PlanError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(PlanError);
  return e as PlanError;
}

describe('plan limits', () => {
  it('refuses a disk entry past MAX_ENTRY_BYTES while parsing it, with a short message', async () => {
    const path = join(dir, 'manykeys.json');
    writeFileSync(path, `{"disks":[{"source":"a.img","output":"a.raw","stages":["convert"]},{"source":"b.img","output":"o.raw","stages":["convert"],"options":${manyKeys(300_000)}}]}`);
    let read = 0;
    const e = await planError(validatePlan(planFromFile(path, { onRead: (n) => (read = n) })));
    expect(e.issues).toEqual([{ path: 'disks[1]', message: `is longer than ${MAX_ENTRY_BYTES} bytes, far beyond any real entry; the plan is refused before it is read whole` }]);
    expect(e.message.length).toBeLessThan(1000);
    // Stopped within a read chunk of the limit, not at the end of the 3.5 MB file.
    expect(read).toBeLessThan(MAX_ENTRY_BYTES + 256 * 1024);
    expect(statSync(path).size).toBeGreaterThan(3 * MAX_ENTRY_BYTES);
  });

  it('counts disks right in a bare array, with nested values before the big one', async () => {
    const path = join(dir, 'array.json');
    writeFileSync(path, `[{"source":"a.img","stages":[{"type":"detect"}]},{"source":"b.img","stages":["detect"]},{"source":"c.img","options":${manyKeys(150_000)}}]`);
    const e = await planError(validatePlan(planFromFile(path)));
    expect(e.issues.map((i) => i.path)).toEqual(['disks[2]']);
  });

  it('bounds header fields the same way', async () => {
    const path = join(dir, 'bigdefaults.json');
    writeFileSync(path, `{"defaults":{"options":${manyKeys(200_000)}},"disks":[{"source":"a.img","output":"a.raw","stages":["convert"]}]}`);
    const e = await planError(validatePlan(planFromFile(path)));
    expect(e.issues.map((i) => i.path)).toEqual(['defaults']);
  });

  it(`refuses more than MAX_OPTION_KEYS (${MAX_OPTION_KEYS}) option keys, as an object or a string`, async () => {
    const keys = Object.fromEntries(Array.from({ length: MAX_OPTION_KEYS + 1 }, (_, i) => [`k${i}`, 1]));
    const text = Object.keys(keys).map((k) => `${k}=1`).join(',');
    const e = await planError(
      validatePipelinePlan({ defaults: { stages: ['convert'] }, disks: [{ source: 'a.img', output: 'a.qcow2', options: keys }, { source: 'b.img', output: 'b.qcow2', options: text }] }, { baseDir: dir, files: false }),
    );
    expect(e.issues).toEqual([
      { path: 'disks[0].options', message: `has ${MAX_OPTION_KEYS + 1} keys; a disk takes at most ${MAX_OPTION_KEYS} (no format has that many options)` },
      { path: 'disks[1].options', message: `has ${MAX_OPTION_KEYS + 1} keys; a disk takes at most ${MAX_OPTION_KEYS} (no format has that many options)` },
    ]);
  });

  it('cuts each issue message at MAX_ISSUE_MESSAGE characters', async () => {
    const e = await planError(validatePipelinePlan({ disks: [{ source: 'a.img', output: 'a.raw', format: 'f'.repeat(100_000), stages: ['convert'] }] }, { baseDir: dir, files: false }));
    expect(e.issues[0].path).toBe('disks[0].format');
    expect(e.issues[0].message.length).toBeLessThanOrEqual(MAX_ISSUE_MESSAGE + 10);
    expect(e.message.length).toBeLessThan(MAX_ISSUE_MESSAGE + 200);
  });

  it('lists at most MAX_LISTED_FAILURES failures in the summary and counts the rest', async () => {
    const n = MAX_LISTED_FAILURES + 5;
    const disks = Array.from({ length: n }, (_, i) => ({ source: `missing-${i}.img`, stages: ['detect'] }));
    let failedEvents = 0;
    const summary = await runPipeline({ concurrency: 8, disks }, { baseDir: dir, onEvent: (e) => void (e.type === 'disk-failed' && failedEvents++) });
    expect(summary).toMatchObject({ total: n, failed: n, succeeded: 0, unlisted: 5 });
    expect(summary.failures).toHaveLength(MAX_LISTED_FAILURES);
    expect(summary.failures.map((f) => f.index)).toEqual([...summary.failures.map((f) => f.index)].sort((a, b) => a - b));
    expect(failedEvents).toBe(n);
  });
});

describe('CompactIndex', () => {
  it('maps 200,000 long keys in under 80 bytes each, exactly', () => {
    const index = new CompactIndex();
    const key = (i: number) => `/srv/converted/tenant-${i % 97}/virtual-machine-${i}/disk-0-${'x'.repeat(40)}.raw`;
    let clashes = 0;
    for (let i = 0; i < 200_000; i++) if (index.setIfAbsent(key(i), i) !== undefined) clashes++;
    expect(clashes).toBe(0);
    expect(index.size).toBe(200_000);
    expect(index.bytes / index.size).toBeLessThan(80);
    for (let i = 0; i < 200_000; i += 997) expect(index.get(key(i))).toBe(i);
    expect(index.setIfAbsent(key(12_345), 7)).toBe(12_345);
    expect(index.get('/not/there')).toBeUndefined();
  });
});
