/**
 * A map from strings to small non-negative integers (disk indexes) that stores a 128-bit digest
 * of each key instead of the key: 20 bytes a slot in typed arrays, at most half of them full, so
 * 40–80 bytes an entry where a Map of path strings costs several hundred. Plan validation keeps
 * three of these (ids, files written, files read) for every disk of the plan, which is what lets
 * a plan of half a million disks be checked in tens of megabytes.
 *
 * Two keys share a digest with probability about n²/2¹²⁹ (1e-27 for a million keys), and the
 * digest is SHA-256, so no plan can be crafted to make two different paths collide.
 */
import { createHash } from 'node:crypto';

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
    const d = createHash('sha256').update(key).digest();
    return new Uint32Array(d.buffer, d.byteOffset, WORDS).slice();
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
