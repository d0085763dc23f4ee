/**
 * A map from strings to small non-negative integers (disk indexes) that stores a 128-bit digest
 * of each key instead of the key: 20 bytes a slot in typed arrays, at most half of them full, so
 * 40–80 bytes an entry where a Map of path strings costs several hundred. Plan validation keeps
 * three of these (ids, files written, files read) for every disk of the plan, which is what lets
 * a plan of half a million disks be checked in tens of megabytes.
 *
 * The digest is MurmurHash3 (x86, 128-bit) over the key's UTF-16 code units: a tenth of the
 * cost of a SHA-256 through node:crypto, which dominated validation. Two different keys share a
 * digest with probability about n²/2¹²⁹; and since equal keys always share one, a collision
 * can only make validation refuse a plan it should accept (two disks "writing one file"), never
 * let a real clash through.
 */

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Two UTF-16 code units of `key` from `i` as one 32-bit word (0 past the end). */
function word(key: string, i: number): number {
  const lo = i < key.length ? key.charCodeAt(i) : 0;
  const hi = i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
  return lo | (hi << 16);
}

function murmur128(key: string, out: Uint32Array): void {
  // Distinct lane seeds: with one seed, a key too short to reach lanes 2–4 would leave them equal.
  let h1 = 0x9747b28c;
  let h2 = 0x3c6ef372;
  let h3 = 0xa54ff53a;
  let h4 = 0x510e527f;
  const units = key.length;
  const full = units - (units % 8);
  for (let i = 0; i < full; i += 8) {
    h1 ^= Math.imul(rotl(Math.imul(word(key, i), C1), 15), C2);
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    h2 ^= Math.imul(rotl(Math.imul(word(key, i + 2), C2), 16), C3);
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    h3 ^= Math.imul(rotl(Math.imul(word(key, i + 4), C3), 17), C4);
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    h4 ^= Math.imul(rotl(Math.imul(word(key, i + 6), C4), 18), C1);
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  if (full < units) {
    h1 ^= Math.imul(rotl(Math.imul(word(key, full), C1), 15), C2);
    h2 ^= Math.imul(rotl(Math.imul(word(key, full + 2), C2), 16), C3);
    h3 ^= Math.imul(rotl(Math.imul(word(key, full + 4), C3), 17), C4);
    h4 ^= Math.imul(rotl(Math.imul(word(key, full + 6), C4), 18), C1);
  }
  const len = units * 2;
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}

const WORDS = 4;

export class CompactIndex {
  private digests: Uint32Array;
  /** value + 1; 0 marks an empty slot. */
  private values: Uint32Array;
  private used = 0;

  constructor(private capacity = 1024) {
    this.digests = new Uint32Array(capacity * WORDS);
    this.values = new Uint32Array(capacity);
  }

  get size(): number {
    return this.used;
  }

  /** Bytes held by the tables. */
  get bytes(): number {
    return this.digests.byteLength + this.values.byteLength;
  }

  /** The digest a key is stored under; pass it instead of the key to look one key up in several indexes. */
  static digest(key: string): Uint32Array {
    const d = new Uint32Array(WORDS);
    murmur128(key, d);
    return d;
  }

  /** The slot holding `d`, or the empty slot where it would go. */
  private slot(d: Uint32Array): number {
    const mask = this.capacity - 1;
    for (let i = d[0] & mask; ; i = (i + 1) & mask) {
      if (this.values[i] === 0) return i;
      const at = i * WORDS;
      if (this.digests[at] === d[0] && this.digests[at + 1] === d[1] && this.digests[at + 2] === d[2] && this.digests[at + 3] === d[3]) return i;
    }
  }

  get(key: string | Uint32Array): number | undefined {
    const v = this.values[this.slot(typeof key === 'string' ? CompactIndex.digest(key) : key)];
    return v === 0 ? undefined : v - 1;
  }

  /** Sets `key` unless it is there already; returns the value it already had, if any. */
  setIfAbsent(key: string | Uint32Array, value: number): number | undefined {
    const d = typeof key === 'string' ? CompactIndex.digest(key) : key;
    let i = this.slot(d);
    if (this.values[i] !== 0) return this.values[i] - 1;
    if ((this.used + 1) * 2 > this.capacity) {
      this.grow();
      i = this.slot(d);
    }
    this.digests.set(d, i * WORDS);
    this.values[i] = value + 1;
    this.used++;
    return undefined;
  }

  private grow(): void {
    const { digests, values } = this;
    this.capacity *= 2;
    this.digests = new Uint32Array(this.capacity * WORDS);
    this.values = new Uint32Array(this.capacity);
    for (let j = 0; j < values.length; j++) {
      if (values[j] === 0) continue;
      const d = digests.subarray(j * WORDS, j * WORDS + WORDS);
      const i = this.slot(d);
      this.digests.set(d, i * WORDS);
      this.values[i] = values[j];
    }
  }
}
