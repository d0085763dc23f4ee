/**
 * The resume state keeps an index of where each disk's latest record sits, not the records:
 * lookups read the record back from the compacted file.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workDir } from '../helpers/work.js';
import type { ResolvedDisk } from '../../src/pipeline/resolve.js';
import { diskFingerprint, ResumeState, type StateRecord } from '../../src/pipeline/state.js';

const dir = workDir('pipeline-state');

const diskN = (i: number): ResolvedDisk => ({ index: i, id: `disk-${i}`, source: `/src/${i}.img`, output: `/out/${i}.raw`, format: 'raw', compress: false, force: false, stages: [{ type: 'convert' }] });
const recordOf = (i: number, status: StateRecord['status'], size = 1): StateRecord => ({
  disk: `disk-${i}`,
  fp: diskFingerprint(diskN(i)),
  status,
  files: [{ path: `/out/${i}.raw`, size, mtimeMs: 1 }],
  at: '2026-01-01T00:00:00.000Z',
});

describe('resume state', () => {
  it('finds the latest record of each disk among many, skipping torn and oversized lines', async () => {
    const path = join(dir, 'many.state.jsonl');
    const n = 5_000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify(recordOf(i, 'converted')));
    for (let i = 0; i < n; i += 2) lines.push(JSON.stringify(recordOf(i, 'done', 2)));
    lines.push(`{"disk":"disk-1","fp":"${'x'.repeat(2 * 1024 * 1024)}"}`);
    writeFileSync(path, `${lines.join('\n')}\n`);
    appendFileSync(path, '{"disk":"disk-3","fp":"');

    const state = await ResumeState.open(path);
    try {
      expect(state.size).toBe(n);
      expect(await state.lookup(diskN(0))).toMatchObject({ status: 'done', files: [{ size: 2 }] });
      expect(await state.lookup(diskN(1))).toMatchObject({ status: 'converted' });
      expect(await state.lookup(diskN(n - 1))).toMatchObject({ status: 'converted' });
      expect(await state.lookup(diskN(n))).toBeUndefined();
      // Another definition of the disk: its record does not count.
      expect(await state.lookup({ ...diskN(4), format: 'qcow2' })).toBeUndefined();
      await state.record(recordOf(5, 'done', 9));
    } finally {
      await state.close();
    }
    // Compacted to one line per disk (plus the one recorded in this run).
    const after = readFileSync(path, 'utf8').trim().split('\n');
    expect(after).toHaveLength(n + 1);
    const again = await ResumeState.open(path);
    try {
      expect(again.size).toBe(n);
      expect(await again.lookup(diskN(5))).toMatchObject({ status: 'done', files: [{ size: 9 }] });
    } finally {
      await again.close();
    }
  });
});
