/** CHS geometry and the virtual size rule, against values qemu-img 7.2 produced (docs/FORMATS.md §4.5, §4.7). */
import { describe, expect, it } from 'vitest';
import { MAX_GEOMETRY_SECTORS, calculateGeometry, chsSectors, createGeometry, decideVirtualSize } from '../../src/formats/vhd/geometry.js';
import { fourcc } from '../../src/formats/vhd/layout.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('VHD CHS geometry', () => {
  it('follows the spec algorithm and rounds down', () => {
    // 1 GiB: 17 sectors would need 121 heads, 31 still more than 16 × 1024 cylinders → 63 sectors.
    expect(calculateGeometry((1 * GiB) / 512)).toEqual({ cylinders: 2080, heads: 16, sectorsPerTrack: 63 });
    // Small disks keep 17 sectors per track and at least 4 heads.
    expect(calculateGeometry(68)).toEqual({ cylinders: 1, heads: 4, sectorsPerTrack: 17 });
    // From 65535 × 16 × 63 sectors on, 255 sectors per track.
    expect(calculateGeometry(65535 * 16 * 63)).toEqual({ cylinders: 16191, heads: 16, sectorsPerTrack: 255 });
    // Clamped to the maximum geometry.
    expect(calculateGeometry(2 ** 40)).toEqual({ cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
    for (const t of [1, 100, 5000, 123457, 2_000_000, 40_000_000, 200_000_000]) expect(chsSectors(calculateGeometry(t))).toBeLessThanOrEqual(t);
  });

  it('rounds created sizes up to a geometry exactly as qemu-img create -f vpc does', () => {
    // [requested, size qemu-img made, C, H, S] as observed with qemu-img 7.2.
    const seen: Array<[number, number, number, number, number]> = [
      [1000, 34816, 1, 4, 17],
      [512, 34816, 1, 4, 17],
      [34816, 34816, 1, 4, 17],
      [34916, 69632, 2, 4, 17],
      [8 * MiB, 8390656, 241, 4, 17],
      [10 * MiB, 10514432, 302, 4, 17],
      [63 * MiB, 66080768, 949, 8, 17],
      [64 * MiB, 67125248, 964, 8, 17],
      [1 * GiB, 1073995776, 2081, 16, 63],
    ];
    for (const [req, size, cylinders, heads, sectorsPerTrack] of seen) {
      expect(createGeometry(req, false), `size ${req}`).toEqual({ size, cylinders, heads, sectorsPerTrack });
    }
  });

  it('keeps the exact size (to a sector) with force_size, and for disks beyond CHS', () => {
    expect(createGeometry(34916, true)).toEqual({ size: 35328, cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
    expect(createGeometry(GiB, true)!.size).toBe(GiB);
    // Above 65535 × 16 × 255 sectors (~127.5 GiB) the search ends at the maximum geometry: exact size.
    expect(createGeometry(200 * GiB, false)).toEqual({ size: 200 * GiB, cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
    expect(createGeometry(2040 * GiB, false)!.size).toBe(2040 * GiB);
    expect(createGeometry(2040 * GiB + 512, false)).toBeUndefined();
    expect(createGeometry(0, false)!.size).toBe(0);
  });
});

describe('VHD virtual size rule (qemu 7.2 vpc_open)', () => {
  const geometry = { cylinders: 65278, heads: 16, sectorsPerTrack: 255 }; // 136 363 130 880 bytes by CHS
  const currentSize = 136365211648;
  const decide = (creator: string, g = geometry) => decideVirtualSize({ creatorApp: fourcc(creator), currentSize, ...g });

  it('goes by CHS for Virtual PC, qemu and unknown creators', () => {
    for (const c of ['vpc ', 'qemu', 'vs  ', 'd2v\0', 'xxxx']) expect(decide(c), c).toEqual({ sectors: 65278 * 16 * 255, source: 'chs' });
  });

  it('goes by current_size for Hyper-V, qemu force_size, Disk2vhd, XenConverter and XenServer', () => {
    for (const c of ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0']) expect(decide(c), c).toEqual({ sectors: currentSize / 512, source: 'current-size' });
  });

  it('goes by current_size whenever the geometry is the maximum one', () => {
    expect(decide('vpc ', { cylinders: 65535, heads: 16, sectorsPerTrack: 255 })).toEqual({ sectors: currentSize / 512, source: 'current-size' });
    expect(MAX_GEOMETRY_SECTORS).toBe(65535 * 16 * 255);
  });

  it('drops a partial last sector of current_size, as qemu does', () => {
    expect(decideVirtualSize({ creatorApp: fourcc('win '), currentSize: 1000, cylinders: 1, heads: 4, sectorsPerTrack: 17 }).sectors).toBe(1);
  });
});
