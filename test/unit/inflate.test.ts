/**
 * Inflating without an output buffer per call (inflateInto, inflateCappedInto) and on worker
 * lanes must agree with inflateCapped — Node's public inflate — on every input: the same bytes
 * where it succeeds, an error (the same one, for the Into variant) where it fails, whether the
 * stream is good, truncated, corrupted, too long for the cap, or followed by garbage.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as zlib from 'node:zlib';
import { inflateCapped, inflateCappedInto, inflateInto, type InflateContexts } from '../../src/stream/compress.js';
import { closeInflateLanes, inflateOnLane } from '../../src/stream/inflate-lanes.js';

const where = { file: 'test', offset: 0 };

/** A payload to inflate: a valid stream of some content, then damaged in one of several ways. */
const payload = fc
  .record({
    kind: fc.constantFrom('raw' as const, 'zlib' as const),
    size: fc.integer({ min: 0, max: 8192 }),
    period: fc.integer({ min: 1, max: 300 }),
    max: fc.integer({ min: 1, max: 9000 }),
    damage: fc.oneof(
      fc.constant({ how: 'none' as const }),
      fc.record({ how: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ how: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ how: fc.constant('trail' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    ),
  })
  .map(({ kind, size, period, max, damage }) => {
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = (i % period) * 7 + (i % 251 === 0 ? 1 : 0);
    let data: Uint8Array = kind === 'raw' ? zlib.deflateRawSync(content) : zlib.deflateSync(content);
    if (damage.how === 'truncate') data = data.subarray(0, damage.at % (data.length + 1));
    if (damage.how === 'flip' && data.length) {
      data = Uint8Array.from(data);
      data[damage.at % data.length] ^= 1 << damage.bit;
    }
    if (damage.how === 'trail') data = Buffer.concat([data, damage.bytes]);
    return { kind, data, max };
  });

function reference(kind: 'raw' | 'zlib', data: Uint8Array, max: number): { bytes?: Buffer; error?: string } {
  try {
    return { bytes: inflateCapped(kind, data, max, where, 'test data') };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe('inflateInto', () => {
  it('never disagrees with inflateCapped: same bytes when it succeeds, and it never succeeds where that fails', () => {
    const contexts: InflateContexts = {};
    fc.assert(
      fc.property(payload, ({ kind, data, max }) => {
        const ref = reference(kind, data, max);
        const out = new Uint8Array(max + 16).fill(0xee);
        const n = inflateInto(zlib, contexts, kind, data, out, 8, max);
        expect(n).not.toBe(-2); // this Node has the handle
        if (n >= 0) {
          expect(ref.bytes).toBeDefined();
          expect(Buffer.from(out.subarray(8, 8 + n)).equals(ref.bytes!)).toBe(true);
        }
        // Nothing outside the slot is touched.
        expect(out.subarray(0, 8).every((b) => b === 0xee)).toBe(true);
        expect(out.subarray(8 + max).every((b) => b === 0xee)).toBe(true);
      }),
      { numRuns: 2000, seed: 3 },
    );
  });

  it('inflateCappedInto gives inflateCapped’s bytes or throws its error', () => {
    fc.assert(
      fc.property(payload, ({ kind, data, max }) => {
        const ref = reference(kind, data, max);
        const out = new Uint8Array(max);
        let got: { n?: number; error?: string };
        try {
          got = { n: inflateCappedInto(kind, data, out, 0, max, where, 'test data') };
        } catch (e) {
          got = { error: (e as Error).message };
        }
        if (ref.error !== undefined) expect(got.error).toBe(ref.error);
        else expect(Buffer.from(out.subarray(0, got.n)).equals(ref.bytes!)).toBe(true);
      }),
      { numRuns: 2000, seed: 4 },
    );
  });
});

describe('inflate lanes', () => {
  afterAll(() => closeInflateLanes());

  it('inflate batches on a worker with the same results as the main thread', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(payload, { minLength: 4, maxLength: 12 }), fc.integer({ min: 1, max: 9000 }), async (items, max) => {
        const kind = items[0].kind;
        const datas = items.map((p) => p.data);
        let seen: Array<Uint8Array | undefined> | undefined;
        // Two jobs: one worker beside the main thread, whatever this machine has.
        const ran = await inflateOnLane(
          kind,
          datas,
          max,
          (outs) => {
            seen = outs.map((o) => o?.slice());
          },
          2,
        );
        expect(ran).toBe(true);
        datas.forEach((d, i) => {
          const got = seen![i];
          // What the worker inflates is what the main thread gets; what it refuses, inflateInto
          // refuses on the main thread too (and the caller falls back to inflateCapped).
          if (got) expect(Buffer.from(got).equals(reference(kind, d, max).bytes!)).toBe(true);
          else expect(inflateInto(zlib, {}, kind, d, new Uint8Array(max), 0, max)).toBe(-1);
        });
      }),
      { numRuns: 150, seed: 6 },
    );
  });

  it('-m 1 means no worker: the caller inflates', async () => {
    const d = zlib.deflateRawSync(Buffer.alloc(4096, 7));
    expect(await inflateOnLane('raw', [d, d, d, d], 4096, () => {}, 1)).toBe(false);
  });
});
