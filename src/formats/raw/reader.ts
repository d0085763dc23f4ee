import type { ByteSource } from '../../stream/source.js';
import type { Extent, FormatInfo, ImageReader } from '../types.js';
import { PROBE_MAX, PROBE_UNIT, type HoleProbe } from './holes.js';

/** Runs kept after the first full pass (writers plan from the map, then the engine copies by it). */
const MAX_CACHED_RUNS = 100_000;

/**
 * A raw image is the virtual disk byte for byte. Node has no SEEK_HOLE/SEEK_DATA: the holes of a
 * sparse file are found by direct-read probes (holes.ts) in PROBE_UNIT steps where that works;
 * otherwise the whole file is reported as data and the copy engine finds zeros by reading them.
 */
export class RawReader implements ImageReader {
  readonly format = 'raw';
  private cached?: Extent[];
  constructor(
    private readonly source: ByteSource,
    readonly virtualSize: number,
    private readonly path: string | undefined,
    private readonly probe?: HoleProbe,
    /** The file has holes (they may not be locatable: see mapNote). */
    private readonly sparse = probe !== undefined,
  ) {}

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.source.read(offset, length, into);
  }

  async *extents(from = 0, to = this.virtualSize): AsyncIterable<Extent> {
    const end = Math.min(to, this.virtualSize);
    if (end <= from) return;
    if (!this.probe) {
      yield { offset: from, length: end - from, kind: 'data', depth: 0, hostOffset: from };
      return;
    }
    if (this.cached) {
      yield* clip(this.cached, from, end);
      return;
    }
    const whole = from === 0 && end === this.virtualSize;
    const runs: Extent[] = [];
    let cur: Extent | undefined;
    const push = (offset: number, length: number, zero: boolean): Extent | undefined => {
      const kind = zero ? 'zero' : 'data';
      if (cur && cur.kind === kind) {
        cur.length += length;
        return undefined;
      }
      const done = cur;
      // Zero runs keep their host offset too: qemu-img map shows where a raw file's holes are.
      cur = { offset, length, kind, depth: 0, hostOffset: offset };
      return done;
    };
    const emit = function* (e: Extent | undefined): Generator<Extent> {
      if (!e) return;
      if (whole && runs.length < MAX_CACHED_RUNS) runs.push(e);
      yield e;
    };
    // Probes go from big to small: an 8 MiB probe settles a big hole at once; a window with data
    // is halved only while one half is a hole, so the edges between holes and data are found to
    // PROBE_UNIT, while a window dense with data costs three probes (one per 64 KiB unit made
    // 2 GiB raw → qcow2 six times slower than reading the data outright).
    const probe = this.probe;
    const split = async function* (pos: number, len: number, knownData: boolean): AsyncGenerator<[number, number, boolean]> {
      if (!knownData && (await probe.isZero(pos, len))) {
        yield [pos, len, true];
        return;
      }
      if (len <= PROBE_UNIT || !probe.working) {
        yield [pos, len, false];
        return;
      }
      const half = Math.max(PROBE_UNIT, Math.floor(len / 2 / PROBE_UNIT) * PROBE_UNIT);
      const [a, b] = [
        [pos, half],
        [pos + half, len - half],
      ] as const;
      const aZero = await probe.isZero(a[0], a[1]);
      const bZero = b[1] > 0 && (await probe.isZero(b[0], b[1]));
      if (!aZero && !bZero) {
        // Data in both halves: what holes lie inside are left to the copy engine's zero scan.
        yield [pos, len, false];
        return;
      }
      if (aZero) yield [a[0], a[1], true];
      else yield* split(a[0], a[1], true);
      if (b[1] > 0) {
        if (bZero) yield [b[0], b[1], true];
        else yield* split(b[0], b[1], true);
      }
    };
    let pos = from;
    while (pos < end) {
      const big = Math.min(PROBE_MAX - (pos % PROBE_MAX), end - pos);
      for await (const [at, n, zero] of split(pos, big, false)) yield* emit(push(at, n, zero));
      pos += big;
    }
    yield* emit(cur);
    if (whole && runs.length < MAX_CACHED_RUNS) this.cached = runs;
  }

  /** What map cannot show of this file (stderr note), when it has holes. */
  mapNote(): string | undefined {
    if (!this.sparse) return undefined;
    return this.probe?.working
      ? `raw image: holes are found by probing ${PROBE_UNIT / 1024} KiB units (Node.js has no SEEK_HOLE); a unit holding any data is shown as data`
      : 'raw image: this sparse file’s holes cannot be located here (Node.js has no SEEK_HOLE/SEEK_DATA); it is mapped as data, and convert finds its zeros by reading them';
  }

  info(): FormatInfo {
    return { format: 'raw', virtualSize: this.virtualSize };
  }

  files(): string[] {
    return this.path ? [this.path] : [];
  }

  async close(): Promise<void> {
    await this.probe?.close();
    await this.source.close();
  }
}

function* clip(runs: Extent[], from: number, end: number): Generator<Extent> {
  for (const e of runs) {
    const s = Math.max(from, e.offset);
    const t = Math.min(end, e.offset + e.length);
    if (t > s) yield { ...e, offset: s, length: t - s, hostOffset: s };
  }
}
