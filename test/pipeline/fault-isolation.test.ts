/**
 * A pipeline survives any one disk's failure, whatever stage it happens in and however it
 * happens — including the worst case the engine once had: an error thrown together with a
 * rejected promise nobody handles, which used to end the whole process with no summary.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File, workDir } from '../helpers/work.js';
import { makeSparseDisk, parseEvents, pipelineCli, summaryOf, writeJson } from './helpers.js';

const root = workDir('pipeline-faults');
const STAGES = ['detect', 'inspect-info', 'convert', 'verify', 'checksum', 'copy-to'] as const;
const DISKS = 4;
const VICTIM = 1;

describe('one disk failing in any stage', () => {
  for (const stage of STAGES) {
    it(`in ${stage}: the other disks complete, the summary names the failure, exit 1`, () => {
      const dir = join(root, stage);
      mkdirSync(dir);
      for (let i = 0; i < DISKS; i++) makeSparseDisk(join(dir, `d${i}.img`), 256 * 1024, i + 1);
      writeJson(join(dir, 'plan.json'), {
        concurrency: DISKS,
        defaults: { stages: ['detect', 'inspect-info', 'convert', 'verify', 'checksum', { type: 'copy-to', dir: 'backup' }] },
        disks: Array.from({ length: DISKS }, (_, i) => ({ id: `d${i}`, source: `d${i}.img`, output: `out/d${i}.raw` })),
      });
      const r = pipelineCli(['run', '--events', 'json', 'plan.json'], dir, { GUESTKIT_TEST_FAULT: `${stage}:d${VICTIM}` });
      expect(r.status, r.stderr).toBe(1);
      const summary = summaryOf(parseEvents(r.stdout));
      expect(summary).toMatchObject({ total: DISKS, succeeded: DISKS - 1, failed: 1 });
      expect(summary.failures).toEqual([{ disk: `d${VICTIM}`, index: VICTIM, stage, message: expect.stringContaining(`injected fault in ${stage}`) }]);
      // The stray rejection was reported, not fatal.
      expect(r.stderr).toMatch(/internal error \(an unhandled rejection, contained.*stray rejection left by/);
      for (let i = 0; i < DISKS; i++) {
        if (i === VICTIM) continue;
        expect(sha256File(join(dir, `out/d${i}.raw`))).toBe(sha256File(join(dir, `d${i}.img`)));
        expect(sha256File(join(dir, `backup/d${i}.raw`))).toBe(sha256File(join(dir, `d${i}.img`)));
      }
    });
  }
});
