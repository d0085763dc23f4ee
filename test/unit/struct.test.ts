import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { struct, u8, u16le, u32be, u32le, u64be, u64le, bits64be, ascii, bytes } from '../../src/formats/shared/struct.js';
import { CorruptImageError, TruncatedImageError } from '../../src/errors.js';

const REC = struct('test record', 40, {
  magic: ascii(0, 4),
  a: u32be(4),
  b: u32le(8),
  c: u16le(12),
  d: u8(14),
  big: u64be(16),
  little: u64le(24),
  flags: bits64be(32),
});

describe('struct codec', () => {
  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          magic: fc.stringMatching(/^[A-Za-z]{4}$/),
          a: fc.nat(0xffffffff),
          b: fc.nat(0xffffffff),
          c: fc.nat(0xffff),
          d: fc.nat(0xff),
          big: fc.maxSafeNat(),
          little: fc.maxSafeNat(),
          flags: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        }),
        (v) => {
          expect(REC.parse(REC.serialize(v))).toEqual(v);
        },
      ),
    );
  });

  it('is big-endian where declared', () => {
    const buf = REC.serialize({ magic: 'QFI\xfb', a: 0x01020304, b: 0x01020304, c: 0x0102, d: 7, big: 1, little: 1, flags: 0n });
    expect([...buf.subarray(4, 12)]).toEqual([1, 2, 3, 4, 4, 3, 2, 1]);
    expect(buf[23]).toBe(1);
    expect(buf[24]).toBe(1);
  });

  it('refuses 64-bit values above 2^53 as corrupt, naming field and absolute offset', () => {
    const buf = new Uint8Array(40);
    new DataView(buf.buffer).setBigUint64(16, 2n ** 60n);
    try {
      REC.parse(buf, { file: 'x.img', base: 1000 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CorruptImageError);
      expect((e as CorruptImageError).field).toBe('big');
      expect((e as CorruptImageError).offset).toBe(1016);
      expect((e as Error).message).toMatch(/^x\.img: the image is corrupt: test record field big is 1152921504606846976, larger than any size or offset/);
    }
  });

  it('reports a truncated record', () => {
    expect(() => REC.parse(new Uint8Array(39), { file: 'short' })).toThrow(TruncatedImageError);
  });

  it('rejects overlapping or out-of-bounds layouts when declared', () => {
    expect(() => struct('bad', 8, { a: u32be(0), b: u32be(2) })).toThrow(/overlap/);
    expect(() => struct('bad', 8, { a: u64be(4) })).toThrow(/does not fit/);
  });

  it('copies bytes fields', () => {
    const R = struct('r', 8, { id: bytes(0, 8) });
    const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const v = R.parse(src);
    src[0] = 9;
    expect(v.id[0]).toBe(1);
  });
});
