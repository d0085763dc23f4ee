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
    let pos = from;
    while (pos < end) {
      // A big probe settles a big hole at once; where it meets data, PROBE_UNIT steps find the edges.
      const big = Math.min(PROBE_MAX - (pos % PROBE_MAX), end - pos);
      if (await this.probe.isZero(pos, big)) {
        yield* emit(push(pos, big, true));
        pos += big;
        continue;
      }
      const stop = pos + big;
      while (pos < stop) {
        const n = Math.min(PROBE_UNIT - (pos % PROBE_UNIT), stop - pos);
        yield* emit(push(pos, n, this.probe.working && (await this.probe.isZero(pos, n))));
        pos += n;
      }
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
