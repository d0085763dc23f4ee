/**
 * Zero detection, the check the copy loop runs on every block it reads. Buffer.compare against a
 * shared zero page runs in native code (memcmp) and is several times faster than a JS loop over
 * bytes or 64-bit words (measured in bench/zero.ts). A scan makes one Buffer view per buffer, not
 * one per unit: at 4 KiB units, a view per unit was 262,144 allocations per GiB of dense data
 * (~0.1 s of main-thread time and GC per GiB).
 */
const ZERO_PAGE = Buffer.alloc(64 * 1024);

export function view(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Whether b[start, end) is all zero bytes. */
export function rangeIsZero(b: Buffer, start: number, end: number): boolean {
  for (let off = start; off < end; off += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, end - off);
    // Cheap early exit on the first and last byte before the memcmp.
    if (b[off] !== 0 || b[off + n - 1] !== 0) return false;
    if (ZERO_PAGE.compare(b, off, off + n, 0, n) !== 0) return false;
  }
  return true;
}

export function isZero(buf: Uint8Array): boolean {
  return rangeIsZero(view(buf), 0, buf.length);
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
  const b = view(buf);
  // Holes and zeroed stretches are common: one check of the whole buffer settles them.
  if (b.length > 0 && rangeIsZero(b, 0, b.length)) {
    onRun(0, b.length, true);
    return;
  }
  let runStart = 0;
  let runZero: boolean | undefined;
  for (let off = 0; off < b.length; off += granularity) {
    const end = Math.min(b.length, off + granularity);
    const z = rangeIsZero(b, off, end);
    if (runZero === undefined) runZero = z;
    else if (z !== runZero) {
      onRun(runStart, off, runZero);
      runStart = off;
      runZero = z;
    }
  }
  if (runZero !== undefined) onRun(runStart, b.length, runZero);
}
