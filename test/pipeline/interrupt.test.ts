/**
 * A real interruption: the CLI is killed (SIGTERM) after its first disk finishes. No temporary
 * file may be left, and `--resume` must take over the dead run's lock, skip what was finished
 * and complete the rest.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File, workDir } from '../helpers/work.js';
import { parseEvents, pipelineCli, pipelineCliAsync, summaryOf, writeJson } from './helpers.js';

const dir = workDir('pipeline-interrupt');
const DISKS = 6;

describe('guestkit pipeline run, interrupted', () => {
  it('leaves no temporary files and resumes where it stopped', async () => {
    mkdirSync(join(dir, 'out'));
    // Dense random disks, one at a time, so the run is still busy when it is killed.
    for (let i = 0; i < DISKS; i++) writeFileSync(join(dir, `d${i}.img`), randomBytes(8 * 1024 * 1024));
    writeJson(join(dir, 'plan.json'), {
      concurrency: 1,
      disks: Array.from({ length: DISKS }, (_, i) => ({ id: `d${i}`, source: `d${i}.img`, output: `out/d${i}.raw`, stages: ['convert', 'verify', 'checksum'] })),
    });

    const child = pipelineCliAsync(['run', '--events', 'json', 'plan.json'], dir);
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + constants.signals[signal] : null))));
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('"type":"disk-finished"')) child.kill('SIGTERM');
    });
    const code = await exited;
    // The cleanup handler dies of SIGTERM, which shells report as 128 + 15.
    expect(code).toBe(143);
    const seen = parseEvents(stdout.slice(0, stdout.lastIndexOf('\n') + 1)).filter((e) => e.type === 'disk-finished').length;
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // The killed run could not remove its lock; the next run must see that its owner is gone.
    expect(existsSync(join(dir, 'plan.json.state.jsonl.lock'))).toBe(true);

    const again = pipelineCli(['run', '--events', 'json', '--resume', 'plan.json'], dir);
    expect(again.status, again.stderr).toBe(0);
    const events = parseEvents(again.stdout);
    const summary = summaryOf(events);
    expect(summary.skipped).toBeGreaterThanOrEqual(seen);
    expect(summary.skipped).toBeLessThan(DISKS);
    expect(summary).toMatchObject({ failed: 0, succeeded: DISKS - summary.skipped });
    for (let i = 0; i < DISKS; i++) expect(sha256File(join(dir, `out/d${i}.raw`))).toBe(sha256File(join(dir, `d${i}.img`)));
    expect(existsSync(join(dir, 'plan.json.state.jsonl.lock'))).toBe(false);
  });
});
