/**
 * A cheap test for data that deflate cannot shrink (already compressed or encrypted content),
 * so that compressing writers can store it instead of spending ~40 µs per KiB deflating it for
 * nothing: about two thirds of a typical disk is such data (docs/ARCHITECTURE.md, performance facts).
 *
 * Order-0 entropy of a sample of the bytes: random data scores ~8 bits per byte, text 4–5, code
 * and file-system metadata lower still. Sampling every 4th byte keeps the test ~20× cheaper than
 * deflating; the bound leaves room for the estimate's small-sample bias (about 0.01 bit at 16 K
 * samples). Data whose redundancy is only in long repeats (a random block written twice) scores
 * high too and is stored: a rare case, and it costs space, never correctness.
 */
export const INCOMPRESSIBLE_BITS_PER_BYTE = 7.9;
const STRIDE = 4;
/** Below this many samples the estimate is too noisy to trust: compress. */
const MIN_SAMPLES = 1024;

const counts = new Uint32Array(256);

export function looksIncompressible(data: Uint8Array): boolean {
  const total = Math.ceil(data.length / STRIDE);
  if (total < MIN_SAMPLES) return false;
  counts.fill(0);
  for (let i = 0; i < data.length; i += STRIDE) counts[data[i]]++;
  let bits = 0;
  for (let s = 0; s < 256; s++) {
    const c = counts[s];
    if (c) {
      const p = c / total;
      bits -= p * Math.log2(p);
    }
  }
  return bits >= INCOMPRESSIBLE_BITS_PER_BYTE;
}
