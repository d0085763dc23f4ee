/**
 * Several writes in flight (WriteBehind, the engine's parallelWrites): calls are taken one after
 * the other in the order made, a call resolves only after its data is written, a failed write
 * fails the rest, and no writer hands the engine's buffer back before its write has landed. The
 * last point is checked through a sink that copies the bytes only when a write completes, after a
 * random delay: a buffer reused too early would show up as wrong content on read-back.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WriteBehind } from '../../src/formats/shared/write-behind.js';
import { BufferSink, type ByteSink } from '../../src/stream/sink.js';
import { BufferSource } from '../../src/stream/source.js';
import { copyImage } from '../../src/stream/copy.js';
import { byName } from '../../src/formats/registry.js';
import { openSource } from '../../src/formats/open.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { sparseContent } from '../fuzz/harness.js';

/** A file-like sink whose writes land (are copied) only when they complete, in any order. */
class LaggingSink implements ByteSink {
  readonly seekable = true;
  readonly inner = new BufferSink('lagging');
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly delay: () => number,
    readonly name = 'lagging',
    private readonly failAt?: number,
  ) {}
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delay()));
      if (this.failAt !== undefined && offset <= this.failAt && this.failAt < offset + data.length) throw new Error(`injected failure at ${offset}`);
      await this.inner.write(offset, data);
    } finally {
      this.inFlight--;
    }
  }
  async setLength(length: number): Promise<void> {
    expect(this.inFlight).toBe(0); // a file is cut or extended only when its data is in
    await this.inner.setLength(length);
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('WriteBehind', () => {
  it('runs steps in call order, one at a time, and resolves a call only after its writes', async () => {
    const sink = new LaggingSink(() => 20);
    const wb = new WriteBehind();
    const log: string[] = [];
    let running = 0;
    const step = (i: number) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${i}`);
      await new Promise((r) => setTimeout(r, (3 - i) * 2)); // earlier steps take longer
      await wb.write(sink, i * 10, new Uint8Array([i + 1]));
      log.push(`end ${i}`);
      running--;
    };
    const calls = [0, 1, 2].map((i) =>
      wb.call(step(i)).then(() => {
        // Resolved: this call's write has landed.
        expect(sink.inner.bytes()[i * 10]).toBe(i + 1);
        log.push(`resolved ${i}`);
      }),
    );
    await Promise.all(calls);
    expect(log.filter((l) => !l.startsWith('resolved'))).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
    expect(sink.maxInFlight).toBeGreaterThan(1); // step 1 ran while step 0's write was in flight
    const bytes = sink.inner.bytes();
    expect([bytes[0], bytes[10], bytes[20]]).toEqual([1, 2, 3]);
    await wb.drain();
  });

  it('fails the call whose write failed, every later call, and drain', async () => {
    const sink = new LaggingSink(() => 1, 'failing', 10);
    const wb = new WriteBehind();
    const first = wb.call(() => wb.write(sink, 10, new Uint8Array(4)));
    await expect(first).rejects.toThrow('injected failure at 10');
    await expect(wb.call(async () => {})).rejects.toThrow('injected failure at 10');
    await expect(wb.drain()).rejects.toThrow('injected failure at 10');
  });

  it('waits on a pipe: one write at a time, in order', async () => {
    const pipe = new LaggingSink(() => 1);
    Object.defineProperty(pipe, 'seekable', { value: false });
    const wb = new WriteBehind();
    await wb.call(async () => {
      await wb.write(pipe, 0, new Uint8Array(2));
      expect(pipe.inFlight).toBe(0);
      await wb.write(pipe, 2, new Uint8Array(2));
    });
    expect(pipe.maxInFlight).toBe(1);
  });
});

/** Writers that take several calls in flight, with the options that change their layout. */
const VARIANTS: Array<[string, Record<string, unknown>]> = [
  ['qcow2', {}],
  ['qcow2', { cluster_size: '4k' }],
  ['qcow2', { compat: '0.10', extended_l2: 'off' }],
  ['vhd', {}],
  ['vhd', { subformat: 'fixed' }],
  ['vdi', {}],
  ['vdi', { static: 'on' }],
  ['vmdk', {}],
  ['vmdk', { zeroed_grain: 'on' }],
  ['raw', {}],
];

describe('every writer with several writes in flight', () => {
  for (const [format, options] of VARIANTS) {
    it(`${format} ${JSON.stringify(options)}: lagging, out-of-order writes still read back as the source`, async () => {
      const driver = byName(format);
      await fc.assert(
        fc.asyncProperty(sparseContent, fc.integer({ min: 0, max: 2 ** 31 }), async (content, seed) => {
          let s = seed;
          const sink = new LaggingSink(() => (s = (s * 1103515245 + 12345) % 2 ** 31) % 4, `out.${format}`);
          const source = new RawReader(new BufferSource(content), content.length, undefined);
          const writer = await driver.create!(sink, {
            virtualSize: content.length,
            options: driver.optionsSchema ? (driver.optionsSchema.parse(options) as Record<string, unknown>) : {},
            file: sink.name,
          });
          expect(writer.parallelWrites ?? 1).toBeGreaterThan(1);
          // Small chunks: many calls, many writes in flight at once.
          await copyImage(source, writer, { chunkSize: 64 * 1024, readAhead: 8 });
          await writer.finish();
          expect(sink.inFlight).toBe(0);
          const image = await openSource(new BufferSource(sink.inner.bytes().slice()), { format });
          try {
            expect(image.virtualSize).toBeGreaterThanOrEqual(content.length);
            const back = await image.read(0, content.length);
            expect(Buffer.compare(Buffer.from(back), Buffer.from(content))).toBe(0);
          } finally {
            await image.close();
          }
        }),
        { numRuns: 25, seed: 5 },
      );
    });
  }
});
