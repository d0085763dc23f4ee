/**
 * The forward-only stream reader's bounded look-ahead: a map asked for before any read (as a
 * one-pass writer planning its metadata does) holds at most LOOKAHEAD_BYTES of grains, then
 * reports the rest of the disk as data; reads still return the exact disk, holes as zeros.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { rootContext } from '../../src/formats/open.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import type { Extent, ImageReader } from '../../src/formats/types.js';
import { vmdkDriver } from '../../src/formats/vmdk/driver.js';
import { LOOKAHEAD_BYTES } from '../../src/formats/vmdk/stream-optimized-reader.js';
import { copyImage } from '../../src/stream/copy.js';
import { BufferSink } from '../../src/stream/sink.js';
import { BufferSource, StreamSource } from '../../src/stream/source.js';
import { fastRandom as pseudoRandom } from './helpers.js';

const MiB = 1024 * 1024;

async function streamImage(content: Uint8Array): Promise<Uint8Array> {
  const reader = new RawReader(new BufferSource(content), content.length, undefined);
  const sink = new BufferSink();
  const w = await vmdkDriver.create!(sink, { virtualSize: content.length, options: { subformat: 'streamOptimized' }, file: 'x.vmdk' });
  await copyImage(reader, w);
  await w.finish();
  return sink.bytes().slice();
}

function pipe(bytes: Uint8Array): Promise<ImageReader> {
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += 65536) yield Buffer.from(bytes.subarray(i, i + 65536));
  }
  return vmdkDriver.open!(new StreamSource(Readable.from(chunks()), 'pipe'), rootContext('pipe', undefined, {}));
}

async function collect(it: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('stream read from a pipe', () => {
  // Incompressible data (stored, so as large in the stream as on the disk) beyond the look-ahead,
  // then a hole, then more data.
  const size = 96 * MiB;
  const content = new Uint8Array(size);
  content.set(pseudoRandom(LOOKAHEAD_BYTES + 8 * MiB, 5), 0);
  content.set(pseudoRandom(MiB, 6), 80 * MiB);

  it('maps precisely while the grains ahead fit the look-ahead', async () => {
    const small = new Uint8Array(size);
    small.set(pseudoRandom(4 * MiB, 7), 10 * MiB);
    small.set(pseudoRandom(MiB, 8), 80 * MiB);
    const r = await pipe(await streamImage(small));
    try {
      const map = await collect(r.extents());
      // Holes read as zeros and are not present (qemu-img map's view of a VMDK without a parent).
      expect(map.map((e) => [e.offset / MiB, e.length / MiB, e.kind, e.present ?? true])).toEqual([
        [0, 10, 'zero', false],
        [10, 4, 'data', true],
        [14, 66, 'zero', false],
        [80, 1, 'data', true],
        [81, 15, 'zero', false],
      ]);
      expect(r.info().warnings).toBeUndefined();
    } finally {
      await r.close();
    }
  });

  it('past the look-ahead, reports the rest as data and still reads every byte right', async () => {
    const r = await pipe(await streamImage(content));
    try {
      const planned = await collect(r.extents());
      expect(planned).toHaveLength(1);
      expect(planned[0]).toMatchObject({ offset: 0, length: size, kind: 'data' });
      expect(r.info().warnings?.[0]).toMatch(/allocation unknown beyond \d+ bytes: more than 33554432 bytes of grains ahead/);
      // The copy engine asks again, then reads forward.
      const sink = new BufferSink();
      const raw = await (await import('../../src/formats/raw/driver.js')).rawDriver.create!(sink, { virtualSize: size, options: {}, file: 'out' });
      await copyImage(r, raw);
      await raw.finish();
      expect(Buffer.from(sink.bytes()).equals(Buffer.from(content))).toBe(true);
    } finally {
      await r.close();
    }
  });
});
