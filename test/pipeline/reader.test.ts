/**
 * The plan readers stream: disks are handed out while the file is still being read, the reader
 * never runs more than a chunk or two ahead of its consumer, and the heap does not grow with
 * the number of disks consumed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { workDir } from '../helpers/work.js';
import { readJsonPlan } from '../../src/pipeline/json-plan-reader.js';
import { readJsonLinesPlan } from '../../src/pipeline/jsonl-plan-reader.js';
import { planFromFile } from '../../src/pipeline/plan-source.js';
import { planDisks, validatePlan } from '../../src/pipeline/plan.js';
import type { PlanItem } from '../../src/pipeline/json-plan-reader.js';

const dir = workDir('pipeline-reader');
const DISKS = 10_000;
const CHUNK = 16 * 1024;

function disk(i: number) {
  // Long-ish paths and an options object so a retained disk would cost the heap a visible amount.
  return {
    id: `vm-${i}`,
    source: `/srv/images/tenant-${i % 97}/virtual-machine-number-${i}/disk-0-${'x'.repeat(40)}.vmdk`,
    output: `/srv/converted/tenant-${i % 97}/vm-${i}.raw`,
    options: { zeroes: i % 2 === 0 },
    stages: ['detect', 'convert', 'verify', 'checksum'],
  };
}

/**
 * A JSON plan written by hand so each disk's end offset is known: the header comes *after* the
 * disks, which the reader must allow.
 */
function writeJsonPlan(path: string): number[] {
  const ends: number[] = [];
  const parts = ['{"disks": [\n'];
  let length = Buffer.byteLength(parts[0]);
  for (let i = 0; i < DISKS; i++) {
    parts.push(`${i ? ',\n' : ''}  ${JSON.stringify(disk(i))}`);
    length += Buffer.byteLength(parts[parts.length - 1]);
    ends.push(length);
  }
  parts.push('\n], "concurrency": 3, "retry": {"attempts": 2}}\n');
  writeFileSync(path, parts.join(''));
  return ends;
}

function writeJsonLinesPlan(path: string): number[] {
  const ends: number[] = [];
  const parts = [`${JSON.stringify({ settings: { concurrency: 2 } })}\n`];
  let length = Buffer.byteLength(parts[0]);
  for (let i = 0; i < DISKS; i++) {
    parts.push(`${JSON.stringify(disk(i))}\n`);
    length += Buffer.byteLength(parts[parts.length - 1]);
    ends.push(length);
  }
  writeFileSync(path, parts.join(''));
  return ends;
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function checkStreaming(read: (onRead: (n: number) => void) => AsyncGenerator<PlanItem>, ends: number[], fileSize: number) {
  let bytesRead = 0;
  let firstDiskAt = -1;
  let maxAhead = 0;
  let count = 0;
  let heapEarly = 0;
  let heapLate = 0;
  for await (const item of read((n) => (bytesRead = n))) {
    if (item.kind !== 'disk') continue;
    expect(item.index).toBe(count);
    expect((item.value as { id: string }).id).toBe(`vm-${count}`);
    if (count === 0) firstDiskAt = bytesRead;
    // How far the reader has read past the end of the disk it just handed out.
    maxAhead = Math.max(maxAhead, bytesRead - ends[count]);
    if (count === 1_000) heapEarly = heapAfterGc();
    if (count === 9_000) heapLate = heapAfterGc();
    count++;
  }
  expect(count).toBe(DISKS);
  // The first disk arrives after the first chunk, long before the end of the file.
  expect(firstDiskAt).toBeLessThanOrEqual(2 * CHUNK);
  expect(firstDiskAt).toBeLessThan(fileSize / 50);
  // Never more than the stream's own read-ahead (one chunk buffered, one being parsed).
  expect(maxAhead).toBeLessThanOrEqual(2 * CHUNK);
  // 8,000 disks of ~300 bytes of JSON each: retaining them would add megabytes.
  expect(heapLate - heapEarly).toBeLessThan(1024 * 1024);
}

describe('incremental plan readers', () => {
  it('stream a 10,000-disk JSON document with flat memory', async () => {
    const path = join(dir, 'big.json');
    const ends = writeJsonPlan(path);
    await checkStreaming((onRead) => readJsonPlan(path, { chunkSize: CHUNK, onRead }), ends, ends.at(-1)!);
  });

  it('stream a 10,000-line JSON-lines plan with flat memory', async () => {
    const path = join(dir, 'big.jsonl');
    const ends = writeJsonLinesPlan(path);
    await checkStreaming((onRead) => readJsonLinesPlan(path, { chunkSize: CHUNK, onRead }), ends, ends.at(-1)!);
  });

  it('reads header fields that follow the disks and validates all 10,000 disks', async () => {
    const path = join(dir, 'big-validate.json');
    writeJsonPlan(path);
    const source = planFromFile(path, { chunkSize: CHUNK });
    const { header, diskCount } = await validatePlan(source);
    expect(diskCount).toBe(DISKS);
    expect(header.concurrency).toBe(3);
    expect(header.retry).toEqual({ attempts: 2, baseDelayMs: 50, maxDelayMs: 2000 });
    let n = 0;
    for await (const d of planDisks(source, header)) {
      if (n === 0) expect(d).toMatchObject({ id: 'vm-0', format: 'raw', source: disk(0).source });
      n++;
    }
    expect(n).toBe(DISKS);
  });

  it('accepts a bare array of disks and a document split at every byte', async () => {
    const path = join(dir, 'array.json');
    writeFileSync(path, JSON.stringify([disk(0), disk(1), disk(2)]));
    const items: PlanItem[] = [];
    // One-byte chunks: tokens, strings and numbers split across every boundary.
    for await (const item of readJsonPlan(path, { chunkSize: 1 })) items.push(item);
    expect(items.map((i) => i.kind === 'disk' && (i.value as { id: string }).id)).toEqual(['vm-0', 'vm-1', 'vm-2']);
  });

  it('keeps multi-byte characters intact across chunk boundaries in JSON lines', async () => {
    const path = join(dir, 'utf8.jsonl');
    const name = 'диск-ü-💾';
    writeFileSync(path, `${JSON.stringify({ source: `${name}.img`, stages: ['detect'] })}\n`);
    const items: PlanItem[] = [];
    for await (const item of readJsonLinesPlan(path, { chunkSize: 3 })) items.push(item);
    expect(items).toEqual([{ kind: 'disk', index: 0, line: 1, value: { source: `${name}.img`, stages: ['detect'] } }]);
  });
});
