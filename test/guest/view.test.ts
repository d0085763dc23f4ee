import { describe, expect, it } from 'vitest';
import { DiskView, RangeView, CACHE_BLOCK } from '../../src/guest/view.js';
import { deviceName, devicesOf } from '../../src/guest/devices.js';
import { crc32 } from '../../src/guest/crc32.js';
import { TruncatedImageError, UsageError } from '../../src/errors.js';
import { memoryReader } from './helpers.js';

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

describe('views', () => {
  it('a disk view reads exact ranges across cache blocks and counts what it asked of the image', async () => {
    const bytes = pattern(64 * 1024);
    const disk = new DiskView(memoryReader(bytes), '/dev/sda');
    expect(await disk.read(4000, 200)).toEqual(bytes.subarray(4000, 4200));
    expect(disk.bytesRead).toBe(2 * CACHE_BLOCK);
    // The same sectors again come from the cache.
    expect(await disk.read(4090, 10)).toEqual(bytes.subarray(4090, 4100));
    expect(disk.bytesRead).toBe(2 * CACHE_BLOCK);
  });

  it('a range view is offset, bounded and nests', async () => {
    const bytes = pattern(32 * 1024);
    const disk = new DiskView(memoryReader(bytes), '/dev/sda');
    const part = new RangeView(disk, 1024, 8192, '/dev/sda1');
    const inner = new RangeView(part, 512, 1024, 'inner');
    expect(await inner.read(10, 20)).toEqual(bytes.subarray(1024 + 512 + 10, 1024 + 512 + 30));
    await expect(part.read(8190, 4)).rejects.toBeInstanceOf(TruncatedImageError);
    await expect(part.read(-1, 4)).rejects.toBeInstanceOf(UsageError);
    expect(() => new RangeView(disk, 30 * 1024, 4096, '/dev/sda2')).toThrow(TruncatedImageError);
  });

  it('big reads bypass the cache', async () => {
    const bytes = pattern(256 * 1024);
    const disk = new DiskView(memoryReader(bytes), '/dev/sda');
    expect(await disk.read(1, 200 * 1024)).toEqual(bytes.subarray(1, 1 + 200 * 1024));
    expect(disk.bytesRead).toBe(200 * 1024);
  });
});

describe('devices', () => {
  it('are named as Linux and libguestfs name them', () => {
    expect([0, 1, 25, 26, 27, 701, 702].map(deviceName)).toEqual([
      '/dev/sda', '/dev/sdb', '/dev/sdz', '/dev/sdaa', '/dev/sdab', '/dev/sdzz', '/dev/sdaaa',
    ]);
    const devs = devicesOf([{ reader: memoryReader(new Uint8Array(512)), source: 'a' }, { reader: memoryReader(new Uint8Array(1024)), source: 'b' }]);
    expect(devs.map((d) => [d.name, d.view.size])).toEqual([['/dev/sda', 512], ['/dev/sdb', 1024]]);
  });
});

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
