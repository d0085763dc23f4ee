/**
 * Capped decompression shared by formats: one unit (a qcow2 cluster, a VMDK grain) in, one unit
 * out. Each format's compressor lives with the format (qcow2/compressed.ts, vmdk/grain-codec.ts):
 * window sizes and stored-block handling differ.
 *
 * Inflating runs synchronously. Why not Node's async zlib on the thread pool: per unit, what
 * costs is the stream object, the pool hop and the callbacks, not the inflating. Measured
 * converting a 2 GiB compressed qcow2 (875 MiB of 64 KiB clusters) to raw: async 4.15 s (2.9 s
 * user, 3.5 s system), synchronous 2.3 s (qemu-img 2.2–2.4 s); VMDK grains measured the same
 * (~860 MB/s synchronous on one core, ~370 MB/s async on two). The thread pool stays free for the
 * reads and writes around the inflating. More cores are used by handing whole batches of clusters
 * to worker threads (inflate-lanes.ts), while the main thread inflates the batches no worker is
 * free for; inflateInto() below inflates in place, without a buffer per unit.
 *
 * Every inflate is capped at the size the format promises: a hostile image cannot make us
 * allocate more than that (no zip bombs).
 */
import * as zlib from 'node:zlib';
import { CorruptImageError } from '../errors.js';

export interface Where {
  file?: string;
  offset?: number;
  field?: string;
}

/**
 * Inflates raw DEFLATE (`raw`) or a zlib stream (`zlib`) to at most `max` bytes and returns what
 * it produced; more is corrupt. `what` names the data in messages ("compressed grain").
 */
export function inflateCapped(kind: 'raw' | 'zlib', data: Uint8Array, max: number, where: Where, what: string): Buffer {
  const opts: zlib.ZlibOptions = { maxOutputLength: max, chunkSize: max + 1024, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  try {
    // windowBits 15 (the default) accepts streams made with any smaller window.
    return kind === 'raw' ? zlib.inflateRawSync(data, opts) : zlib.inflateSync(data, opts);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new CorruptImageError(`${what} inflates to more than ${max} bytes`, where);
    throw new CorruptImageError(`${what} does not inflate: ${(e as Error).message}`, { ...where, cause: e });
  }
}

/** The zlib contexts inflateInto() reuses, one per kind, per thread. */
export interface InflateContexts {
  raw?: zlib.Inflate | zlib.InflateRaw;
  zlib?: zlib.Inflate | zlib.InflateRaw;
  /** One byte of room to see whether a full output would have gone on. */
  probe?: Uint8Array;
}

/**
 * Inflates `src` straight into out[at, at + room) and returns how many bytes it produced, reusing
 * one zlib context per kind: no allocation per call. Returns −1 when the stream is not inflated
 * cleanly within `room` bytes (bad data, or more than `room`), −2 when this Node has no handle to
 * drive (then use inflateCapped). On −1 the caller inflates again with inflateCapped, which says
 * exactly what is wrong; so a success here is never one inflateCapped would refuse, and the two
 * agree on every output.
 *
 * It drives the handle Node's own inflateRawSync drives (_handle.writeSync into a given buffer,
 * _writeState for what is left). Why not the public call: it allocates a ~66 KiB output buffer
 * per cluster, garbage that V8 frees only at its external-memory threshold; on a 2 GiB compressed
 * qcow2 that was ~40 MiB of peak RSS per inflating thread, and inflating was a quarter slower.
 *
 * Self-contained — it uses only its parameters — because the inflate worker runs its source text
 * (src/stream/inflate-lanes.ts).
 */
export function inflateInto(z: typeof zlib, contexts: InflateContexts, kind: 'raw' | 'zlib', src: Uint8Array, out: Uint8Array, at: number, room: number): number {
  interface Handle {
    writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): void;
    reset(): void;
  }
  let ctx = contexts[kind];
  if (!ctx || ctx.destroyed) {
    ctx = contexts[kind] = kind === 'raw' ? z.createInflateRaw() : z.createInflate();
    // Errors also arrive as an event on the stream object; they are read from `destroyed` below.
    ctx.on('error', () => {});
  }
  const inner = ctx as unknown as { _handle?: Handle; _writeState?: Uint32Array };
  const handle = inner._handle;
  const state = inner._writeState;
  if (!handle || typeof handle.writeSync !== 'function' || !state) return -2;
  handle.writeSync(z.constants.Z_FINISH, src, 0, src.length, out, at, room);
  if (ctx.destroyed) return -1;
  const produced = room - state[0];
  if (produced === room) {
    // Full: one more byte coming out would mean more than `room`.
    const probe = (contexts.probe ??= new Uint8Array(1));
    handle.writeSync(z.constants.Z_FINISH, src, src.length - state[1], state[1], probe, 0, 1);
    if (ctx.destroyed) return -1;
    if (state[0] === 0) {
      handle.reset();
      return -1;
    }
  }
  handle.reset();
  return produced;
}

const mainThreadContexts: InflateContexts = {};

/**
 * inflateCapped() into out[at, at + max): the same results and the same errors, without
 * allocating on the way that succeeds. Returns the bytes produced.
 */
export function inflateCappedInto(kind: 'raw' | 'zlib', data: Uint8Array, out: Uint8Array, at: number, max: number, where: Where, what: string): number {
  const n = inflateInto(zlib, mainThreadContexts, kind, data, out, at, max);
  if (n >= 0) return n;
  const r = inflateCapped(kind, data, max, where, what);
  out.set(r, at);
  return r.length;
}

/**
 * Inflates raw DEFLATE expecting exactly `expected` bytes. Trailing garbage after the stream is
 * tolerated (qcow2 hands over whole sectors); a stream that yields less is corrupt.
 */
export function inflateRawExact(data: Uint8Array, expected: number, where: Where): Buffer {
  const out = inflateCapped('raw', data, expected, where, 'compressed data');
  if (out.length !== expected) throw new CorruptImageError(`compressed data inflates to ${out.length} bytes, expected ${expected}`, where);
  return out;
}

/** inflateRawExact() into out[at, at + expected). */
export function inflateRawExactInto(data: Uint8Array, out: Uint8Array, at: number, expected: number, where: Where): void {
  const n = inflateCappedInto('raw', data, out, at, expected, where, 'compressed data');
  if (n !== expected) throw new CorruptImageError(`compressed data inflates to ${n} bytes, expected ${expected}`, where);
}
