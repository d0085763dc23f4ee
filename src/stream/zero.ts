/**
 * Zero detection, the check the copy loop runs on every block it reads. Buffer.compare against a
 * shared zero page runs in native code (memcmp) and is several times faster than a JS loop over
 * bytes or 64-bit words (measured in bench/zero.ts).
 */
const ZERO_PAGE = Buffer.alloc(64 * 1024);

export function isZero(buf: Uint8Array): boolean {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off < b.length; off += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, b.length - off);
    // Cheap early exit on the first and last byte before the memcmp.
    if (b[off] !== 0 || b[off + n - 1] !== 0) return false;
    if (ZERO_PAGE.compare(b, off, off + n, 0, n) !== 0) return false;
  }
  return true;
}

/**
 * Splits `buf` (virtual offset `base`) into alternating runs of data and zeros at `granularity`
 * (qemu-img's -S: the minimum zero run worth turning into a hole). Calls `onRun` in order.
 */
export function scanZeroRuns(
  buf: Uint8Array,
  granularity: number,
  onRun: (start: number, end: number, zero: boolean) => void,
): void {
  // Holes and zeroed stretches are common: one check of the whole buffer settles them.
  if (buf.length > 0 && isZero(buf)) {
    onRun(0, buf.length, true);
    return;
  }
  let runStart = 0;
  let runZero: boolean | undefined;
  for (let off = 0; off < buf.length; off += granularity) {
    const end = Math.min(buf.length, off + granularity);
    const z = isZero(buf.subarray(off, end));
    if (runZero === undefined) runZero = z;
    else if (z !== runZero) {
      onRun(runStart, off, runZero);
      runStart = off;
      runZero = z;
    }
  }
  if (runZero !== undefined) onRun(runStart, buf.length, runZero);
}
