/**
 * Grain coding: hand-written stored zlib streams that zlib itself inflates, the incompressibility
 * test that chooses them, and the capped inflate.
 */
import { readFileSync } from 'node:fs';
import { inflateSync, deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptImageError } from '../../src/errors.js';
import { looksIncompressible } from '../../src/formats/shared/entropy.js';
import { adler32, inflateGrain, storeGrain, zlibBound } from '../../src/formats/vmdk/grain-codec.js';
import { pseudoRandom } from '../helpers/work.js';

describe('stored grains', () => {
  it('are zlib streams zlib inflates back, at every block boundary', () => {
    for (const n of [0, 1, 511, 65535, 65536, 65537, 131070, 131071, 200_000]) {
      const data = pseudoRandom(n, n + 1);
      const z = storeGrain(data);
      expect(z[0]).toBe(0x78);
      expect(((z[0] << 8) | z[1]) % 31).toBe(0);
      expect(z.length).toBeLessThanOrEqual(zlibBound(n));
      expect(Buffer.from(inflateSync(z)).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('carry the Adler-32 zlib computes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), (data) => {
        const z = deflateSync(data);
        expect(adler32(data)).toBe(z.readUInt32BE(z.length - 4));
      }),
      { numRuns: 100, seed: 3 },
    );
  });
});

describe('incompressibility test', () => {
  it('stores random data and compresses text, zeros and short grains', () => {
    expect(looksIncompressible(pseudoRandom(65536, 9))).toBe(true);
    expect(looksIncompressible(new Uint8Array(65536))).toBe(false);
    expect(looksIncompressible(Buffer.from('lorem ipsum dolor sit amet '.repeat(3000)))).toBe(false);
    expect(looksIncompressible(pseudoRandom(1024, 9))).toBe(false);
    // Already-compressed data (a .gz inside the guest) is what it is for.
    const gz = deflateSync(readFileSync(process.execPath).subarray(0, 1 << 20));
    for (let at = 0; at + 65536 <= gz.length; at += 65536) expect(looksIncompressible(gz.subarray(at, at + 65536))).toBe(true);
  });
});

describe('capped inflate', () => {
  it('refuses output beyond the grain and garbage, as corruption', () => {
    const bomb = deflateSync(new Uint8Array(1 << 20));
    expect(() => inflateGrain(bomb, 65536, { file: 'x' })).toThrow(CorruptImageError);
    expect(() => inflateGrain(Uint8Array.of(1, 2, 3, 4), 65536, { file: 'x', offset: 5 })).toThrow(/does not inflate/);
    expect(inflateGrain(deflateSync(pseudoRandom(65536, 2)), 65536, {}).length).toBe(65536);
  });
});
