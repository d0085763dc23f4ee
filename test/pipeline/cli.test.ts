/**
 * `guestkit pipeline` as a user runs it: a spawned process on real files. The big case: 200 small
 * disks, concurrency 4, one disk deliberately broken, and the summary reports exactly that one;
 * then `--resume` skips what was done.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256File, workDir } from '../helpers/work.js';
import { byName } from '../../src/formats/registry.js';
import { checksumImage } from '../../src/api/checksum.js';
import { compareImages } from '../../src/api/compare.js';
import { makeSparseDisk, parseEvents, pipelineCli, summaryOf, writeJson } from './helpers.js';

const dir = workDir('pipeline-cli');
const DISKS = 200;
const BROKEN = 137;

/**
 * Output formats this build can both write and read back: raw today, the others as their
 * drivers land, so the same test then spreads the 200 disks across every format.
 */
const FORMATS = ['raw', 'qcow2', 'vmdk', 'vpc', 'vdi'].filter((f) => {
  const d = byName(f);
  return d.capabilities.write && d.capabilities.read;
});

function outputName(i: number): string {
  const driver = byName(FORMATS[i % FORMATS.length]);
  return `out/disk${i}.${driver.extensions[0]}`;
}

/** A qcow2 header with cluster_bits 0: recognised by its magic, refused when opened. */
function writeBrokenQcow2(path: string): void {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(3, 4);
  writeFileSync(path, head);
}

beforeAll(() => {
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'out'));
  for (let i = 0; i < DISKS; i++) {
    if (i === BROKEN) writeBrokenQcow2(join(dir, `src/disk${i}.img`));
    // 64 KiB to 1 MiB, mostly holes.
    else makeSparseDisk(join(dir, `src/disk${i}.img`), 64 * 1024 * (1 + (i % 16)), i + 1);
  }
  writeJson(join(dir, 'plan.json'), {
    concurrency: 4,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    defaults: { stages: ['detect', 'convert', 'verify', 'checksum'] },
    disks: Array.from({ length: DISKS }, (_, i) => ({ id: `disk${i}`, source: `src/disk${i}.img`, output: outputName(i) })),
  });
});

describe('guestkit pipeline run', () => {
  it('runs 200 disks four at a time; the one broken disk is the one failure', async () => {
    const r = pipelineCli(['run', '--events', 'json', 'plan.json'], dir);
    expect(r.status, r.stderr).toBe(1);
    const events = parseEvents(r.stdout);
    expect(events[0]).toMatchObject({ type: 'plan-started', disks: DISKS, concurrency: 4, resume: false });
    const summary = summaryOf(events);
    expect(summary).toMatchObject({ total: DISKS, succeeded: DISKS - 1, failed: 1, skipped: 0 });
    expect(summary.failures).toEqual([{ disk: `disk${BROKEN}`, index: BROKEN, stage: 'convert', message: expect.stringContaining(`disk${BROKEN}.img`) }]);

    // Never more than four disks between disk-started and their end.
    let inFlight = 0;
    let peak = 0;
    for (const e of events) {
      if (e.type === 'disk-started') peak = Math.max(peak, ++inFlight);
      if (e.type === 'disk-finished' || e.type === 'disk-failed') inFlight--;
    }
    expect(peak).toBe(4);

    // Every good disk went through every stage; its checksum is its output's virtual content,
    // which reads as the source (VHD rounds the size up to its geometry, hence no strict compare).
    const finished = events.filter((e) => e.type === 'disk-finished');
    expect(finished).toHaveLength(DISKS - 1);
    for (const i of [0, 1, 2, 3, 4, 5, 99, 199]) {
      const output = join(dir, outputName(i));
      const f = finished.find((e) => e.disk === `disk${i}`);
      expect(f).toMatchObject({ output, sha256: await checksumImage(output) });
      expect(await compareImages(join(dir, `src/disk${i}.img`), output)).toMatchObject({ identical: true });
      const stages = events.filter((e) => e.type === 'stage-done' && e.disk === `disk${i}`).map((e) => (e as { stage: string }).stage);
      expect(stages).toEqual(['detect', 'convert', 'verify', 'checksum']);
    }
    // Disks spread over every format that can be written and read back.
    const written = new Set(events.flatMap((e) => (e.type === 'stage-done' && e.stage === 'convert' ? [e.result.format] : [])));
    expect([...written].sort()).toEqual(FORMATS.map((f) => byName(f).name).sort());
    expect(sha256File(join(dir, 'out/disk0.raw'))).toBe(sha256File(join(dir, 'src/disk0.img')));
  });

  it('--resume skips the finished disks and retries only the broken one; fixed, it succeeds', () => {
    const again = pipelineCli(['run', '--events', 'json', '--resume', 'plan.json'], dir);
    expect(again.status).toBe(1);
    const events = parseEvents(again.stdout);
    expect(summaryOf(events)).toMatchObject({ skipped: DISKS - 1, failed: 1, succeeded: 0 });
    expect(events.filter((e) => e.type === 'disk-started').map((e) => (e as { disk: string }).disk)).toEqual([`disk${BROKEN}`]);

    makeSparseDisk(join(dir, `src/disk${BROKEN}.img`), 256 * 1024, 4242);
    const fixed = pipelineCli(['run', '--resume', 'plan.json'], dir);
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(new RegExp(`✓ disk${BROKEN} `));
    expect(fixed.stdout).toMatch(new RegExp(`${DISKS} disks: 1 succeeded, 0 failed, ${DISKS - 1} skipped`));
  });

  it('prints a human summary that names the failed disk, without control characters off a terminal', () => {
    const sub = join(dir, 'human');
    mkdirSync(sub);
    makeSparseDisk(join(sub, 'good.img'), 128 * 1024, 7);
    writeFileSync(join(sub, 'bad.img'), Buffer.alloc(0));
    writeJson(join(sub, 'plan.json'), {
      disks: [
        { source: 'good.img', output: 'good.raw', stages: ['convert', 'verify'] },
        { id: 'missing', source: 'nowhere.img', output: 'nowhere.raw', stages: ['convert'] },
      ],
    });
    const r = pipelineCli(['run', 'plan.json', '--no-state'], sub);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/✓ good\.raw \(raw→raw, 128 KiB/);
    expect(r.stdout).toMatch(/✗ missing: failed at convert: .*nowhere\.img/);
    expect(r.stdout).toMatch(/2 disks: 1 succeeded, 1 failed/);
    expect(r.stdout).toMatch(/Failed:\n {2}missing \(disks\[1\], convert\): /);
    expect(r.stdout).not.toMatch(/\x1b/);
  });

  it('exits 2 on an invalid plan and names every bad field', () => {
    writeJson(join(dir, 'bad-plan.json'), {
      disks: [
        { source: 'src/disk0.img', output: 'x.raw', stages: ['convert'] },
        { source: 'src/disk1.img', output: 'y.raw', stages: ['convert', 'verfy'] },
        { source: 'src/disk2.img', stages: ['convert'] },
      ],
    });
    const r = pipelineCli(['run', '--events', 'json', 'bad-plan.json'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/disks\[1\]\.stages\[1\]: unknown stage "verfy"/);
    expect(r.stderr).toMatch(/disks\[2\]\.output: required by the convert stage/);
    const [event] = parseEvents(r.stdout);
    expect(event).toMatchObject({ type: 'plan-invalid', issues: [{ path: 'disks[1].stages[1]' }, { path: 'disks[2].output' }] });

    const ok = pipelineCli(['validate', '--json', 'plan.json'], dir);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ plan: 'plan.json', valid: true, disks: DISKS });
  });

  it('refuses a bad option with exit 2 and shows examples in --help', () => {
    expect(pipelineCli(['run', '--concurrency', '0', 'plan.json'], dir)).toMatchObject({ status: 2, stderr: expect.stringMatching(/--concurrency takes a number of disks from 1 to 64/) });
    const help = pipelineCli(['run', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Examples:\n {2}guestkit pipeline run migrate\.json/);
    expect(help.stdout).toMatch(/--resume/);
    expect(help.stdout).toMatch(/"copy-to"/);
  });
});
