/**
 * Holes of sparse raw sources: found by direct-read probes where the kernel answers them (so
 * convert neither reads nor scans them), never trusted for content, and `map` says on stderr
 * what it cannot show.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileSource } from '../../src/stream/source.js';
import { HoleProbe, PROBE_UNIT } from '../../src/formats/raw/holes.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { openImage } from '../../src/formats/open.js';
import type { Extent } from '../../src/formats/types.js';
import { guestkit } from '../helpers/cli.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const MiB = 1024 * 1024;
const dir = workDir('raw-holes');

function sparseFile(name: string, size: number, data: Array<[number, Uint8Array]>): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const [at, bytes] of data) writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
  return path;
}

async function extentsOf(path: string): Promise<{ runs: Extent[]; note: string | undefined }> {
  const r = await openImage(path);
  try {
    const runs: Extent[] = [];
    for await (const e of r.extents()) runs.push(e);
    return { runs, note: (r as RawReader).mapNote() };
  } finally {
    await r.close();
  }
}

describe('sparse raw sources', () => {
  it('a 1 GiB sparse file: its holes are zero runs, its data is data, by 64 KiB units', async () => {
    const path = sparseFile('big.raw', 1024 * MiB, [
      [5 * MiB + 1000, pseudoRandom(3000, 1)],
      [700 * MiB, pseudoRandom(MiB, 2)],
    ]);
    const { runs, note } = await extentsOf(path);
    // This machine's filesystem (ext4) answers the probes; elsewhere the note must say it could not.
    if (note?.includes('cannot be located')) {
      expect(runs).toEqual([{ offset: 0, length: 1024 * MiB, kind: 'data', depth: 0, hostOffset: 0 }]);
      return;
    }
    expect(note).toMatch(/holes are found by probing 64 KiB units/);
    expect(runs.filter((e) => e.kind === 'data').map((e) => [e.offset, e.length])).toEqual([
      [5 * MiB, PROBE_UNIT],
      [700 * MiB, MiB],
    ]);
    expect(runs.reduce((n, e) => n + e.length, 0)).toBe(1024 * MiB);
    // Zero runs carry their host offset, as qemu-img map shows a raw file's holes.
    for (const e of runs) expect(e.hostOffset).toBe(e.offset);
  });

  it('written zeros are data to the probe (they occupy blocks); the copy engine still finds them', async () => {
    const path = sparseFile('zeros.raw', 4 * MiB, [[MiB, new Uint8Array(MiB)]]);
    const { runs, note } = await extentsOf(path);
    if (note?.includes('cannot be located')) return void expect(runs).toHaveLength(1);
    // ext4/xfs refuse the direct read of allocated blocks; a filesystem that serves it reads the
    // written zeros as zeros, which is the content too.
    expect([
      [
        [0, 1, 'zero'],
        [1, 1, 'data'],
        [2, 2, 'zero'],
      ],
      [[0, 4, 'zero']],
    ]).toContainEqual(runs.map((e) => [e.offset / MiB, e.length / MiB, e.kind]));
  });

  it('content is never taken from the probe: a filesystem that serves direct reads of data switches probing off', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 39 }), async (units, dataAt) => {
        const size = units * PROBE_UNIT;
        const bytes = new Uint8Array(size);
        if (dataAt < units) bytes.set(pseudoRandom(100, units), dataAt * PROBE_UNIT + 7);
        // Every direct read succeeds and returns the real bytes (btrfs falls back to buffered I/O, NFS).
        const probe = new HoleProbe(async (into, length, offset) => {
          into.set(bytes.subarray(offset, offset + length));
          return Math.min(length, size - offset);
        });
        const path = sparseFile(`fake-${units}-${dataAt}.raw`, size, []);
        const reader = new RawReader(await FileSource.open(path), size, path, probe);
        try {
          for await (const e of reader.extents()) {
            if (e.kind === 'zero') expect(bytes.subarray(e.offset, e.offset + e.length).every((b) => b === 0), `zero run at ${e.offset}`).toBe(true);
          }
          if (dataAt < units) {
            expect(probe.working).toBe(false);
            expect(reader.mapNote()).toMatch(/cannot be located/);
          }
        } finally {
          await reader.close();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a refused direct read (EINVAL: the range is on the device) is data, and reading goes on normally', async () => {
    const size = 3 * PROBE_UNIT;
    // Holes read as zeros; a range touching the data block is refused, as Linux refuses it.
    const probe = new HoleProbe(async (into, length, offset) => {
      if (offset < 2 * PROBE_UNIT && offset + length > PROBE_UNIT) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      into.fill(0, 0, length);
      return length;
    });
    const path = sparseFile('einval.raw', size, [[PROBE_UNIT, pseudoRandom(PROBE_UNIT, 4)]]);
    const reader = new RawReader(await FileSource.open(path), size, path, probe);
    const runs: Array<[number, string]> = [];
    for await (const e of reader.extents()) runs.push([e.offset / PROBE_UNIT, e.kind]);
    await reader.close();
    expect(runs).toEqual([
      [0, 'zero'],
      [1, 'data'],
      [2, 'zero'],
    ]);
  });

  it('a window dense with data costs a few probes, not one per 64 KiB unit; edges next to holes stay exact', async () => {
    // 64 MiB: data everywhere except a hole of 3 units at 40 MiB + 5 units (found: next to data it
    // is an edge of a halving) — as the probe answers, without a real file of that shape.
    const size = 64 * MiB;
    const hole = [40 * MiB + 5 * PROBE_UNIT, 40 * MiB + 8 * PROBE_UNIT];
    let probes = 0;
    const probe = new HoleProbe(async (into, length, offset) => {
      probes++;
      if (offset >= hole[0] && offset + length <= hole[1]) {
        into.fill(0, 0, length);
        return length;
      }
      throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    });
    const path = sparseFile('dense.raw', size, []);
    const reader = new RawReader(await FileSource.open(path), size, path, probe);
    const runs: Extent[] = [];
    for await (const e of reader.extents()) runs.push(e);
    await reader.close();
    expect(runs.reduce((n, e) => n + e.length, 0)).toBe(size);
    expect(runs.every((e) => e.kind === 'data')).toBe(true);
    // Before: one probe per 64 KiB unit of every window with data (1,032 here), which made a 2 GiB
    // raw → qcow2 convert six times slower. Three per dense 8 MiB window now.
    expect(probes).toBeLessThanOrEqual(3 * (size / (8 * MiB)));
  });

  it('a sparse file on a filesystem without direct reads (tmpfs): one data run, and the note says why', async () => {
    const path = sparseFile('nodirect.raw', 4 * MiB, [[MiB, pseudoRandom(100, 7)]]);
    const reader = new RawReader(await FileSource.open(path), 4 * MiB, path, undefined, true);
    const runs: Extent[] = [];
    for await (const e of reader.extents()) runs.push(e);
    await reader.close();
    expect(runs).toEqual([{ offset: 0, length: 4 * MiB, kind: 'data', depth: 0, hostOffset: 0 }]);
    expect(reader.mapNote()).toMatch(/holes cannot be located here \(Node\.js has no SEEK_HOLE\/SEEK_DATA\); it is mapped as data/);
  });

  it('map: a note on stderr in human mode, none in JSON mode (stdout stays qemu-img JSON)', () => {
    const path = sparseFile('map.raw', 8 * MiB, [[2 * MiB, pseudoRandom(4096, 5)]]);
    const human = guestkit(['map', path]);
    expect(human.status).toBe(0);
    expect(human.stderr).toMatch(/^guestkit: note: raw image: (holes are found by probing 64 KiB units|this sparse file’s holes cannot be located)/);
    const json = guestkit(['map', '--output', 'json', path]);
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ start: 0, depth: 0, present: true, offset: 0 });
    // A file without holes maps exactly: no note.
    const dense = sparseFile('dense.raw', 64 * 1024, [[0, pseudoRandom(64 * 1024, 6)]]);
    expect(guestkit(['map', dense]).stderr).toBe('');
  });
});
