/**
 * A conversion that fails while reads are in flight fails cleanly: a typed error, exit 1, one line
 * on stderr, and no unhandled rejection (which printed a stack trace and, in a pipeline, took
 * every other disk down). The trigger is a qcow2 with more undecodable compressed clusters than
 * one read takes (32), so several failing reads are in flight at once, on the inflate workers or
 * not (-m).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { CorruptImageError } from '../../src/errors.js';
import { compressedEntry, craftQcow2, CRAFT_DATA_OFFSET } from '../helpers/craft-qcow2.js';
import { guestkit } from '../helpers/cli.js';
import { workDir } from '../helpers/work.js';

const dir = workDir('engine-faults');
/** Not a deflate stream: "invalid distance too far back". */
const garbage = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 7 + 3) & 0xff);

function badCompressed(name: string, clusters: number, spread: boolean): string {
  // Spread: every other cluster, so the reads are many small groups rather than one.
  const l2 = new Map(Array.from({ length: clusters }, (_, i) => [spread ? 2 * i : i, compressedEntry(CRAFT_DATA_OFFSET, 1)] as const));
  const path = join(dir, name);
  writeFileSync(path, craftQcow2(l2, garbage));
  return path;
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

describe('undecodable compressed clusters while other reads are in flight', () => {
  const cases = [
    ['33 adjacent', 33, false],
    ['64 adjacent', 64, false],
    ['40 spread', 40, true],
  ] as const;
  for (const [label, n, spread] of cases) {
    for (const jobs of [undefined, '1', '4']) {
      it(`CLI, ${label}, -m ${jobs ?? 'default'}: exit 1 with one line naming the cluster`, () => {
        const src = badCompressed(`cli-${n}-${spread}-${jobs}.qcow2`, n, spread);
        const r = guestkit(['convert', ...(jobs ? ['-m', jobs] : []), '-O', 'raw', src, join(dir, `out-${n}-${spread}-${jobs}.raw`)]);
        expect(r.status).toBe(1);
        const lines = r.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/compressed data does not inflate.*field compressed cluster, offset \d+/);
        expect(r.stderr).not.toMatch(/unhandled|^\s+at /im);
      });
    }
    it(`library, ${label}: rejects with CorruptImageError and no unhandled rejection`, async () => {
      const src = badCompressed(`api-${n}-${spread}.qcow2`, n, spread);
      await expect(convert({ source: src, output: join(dir, `api-${n}-${spread}.raw`), format: 'raw' })).rejects.toBeInstanceOf(CorruptImageError);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    });
  }
});
