/**
 * Inflating on more than one core. A compressed image's reader hands over a batch of payloads
 * (a run of qcow2 clusters fetched in one read); the batch goes to a worker thread when one is
 * free, and is otherwise inflated right here, on the main thread. So on 2 cores the main thread
 * and one worker inflate side by side, and the main thread never sits idle waiting for a worker.
 *
 * What made this the design (measured on a 2-core machine, 2 GiB compressed qcow2 → raw):
 * - Node's async zlib per cluster spends its time on a stream object and a pool hop per cluster:
 *   4.15 s, against 2.3 s inflating synchronously (src/stream/compress.ts).
 * - A pool of workers with the main thread only dispatching starved the main thread of the CPU
 *   it needs for reads and writes: 2.6–3.1 s and 240 MiB RSS.
 * - One batch of up to 64 clusters per message, inputs packed into one transferred buffer and
 *   outputs into one buffer that goes back and forth, costs two memcpy per batch and no GC churn.
 *
 * The worker runs a few lines of plain JavaScript (no module to find, bundled or not) and only
 * the zlib kinds; anything it cannot inflate to the expected size comes back as failed, and the
 * caller inflates that one again on the main thread, which reports the exact error.
 */
import type { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { inflateInto } from './compress.js';

export type InflateKind = 'raw' | 'zlib';

/**
 * The worker: inflateInto() (one zlib context per kind, reused, inflating straight into the
 * payload's slot of the output buffer), run from its source text so that no module has to be
 * found, bundled or not. Where inflateInto() has no handle (-2), the public call.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const inflateInto = ${inflateInto.toString()};
const contexts = {};
parentPort.on('message', ({ id, kind, input, spans, max, out }) => {
  const n = spans.length / 2;
  const lengths = new Int32Array(n);
  const dst = new Uint8Array(out);
  for (let i = 0; i < n; i++) {
    const src = new Uint8Array(input, spans[2 * i], spans[2 * i + 1]);
    try {
      lengths[i] = inflateInto(zlib, contexts, kind, src, dst, i * max, max);
      if (lengths[i] === -2) {
        const opts = { maxOutputLength: max, chunkSize: max + 1024, finishFlush: zlib.constants.Z_SYNC_FLUSH };
        const r = kind === 'raw' ? zlib.inflateRawSync(src, opts) : zlib.inflateSync(src, opts);
        dst.set(r, i * max);
        lengths[i] = r.length;
      }
    } catch {
      lengths[i] = -1;
    }
  }
  parentPort.postMessage({ id, lengths, out, input }, [out, input]);
});
`;

interface Pending {
  resolve: (r: { lengths: Int32Array; out: ArrayBuffer; input: ArrayBuffer }) => void;
  reject: (e: unknown) => void;
}

class Lane {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  broken = false;
  /** Input and output buffers back from the worker, for the next batch. */
  spareInput?: ArrayBuffer;
  spareOutput?: ArrayBuffer;

  constructor(threads: typeof import('node:worker_threads')) {
    // No inherited flags: the source is CommonJS, whatever the parent was started with (--input-type=module would make it ESM).
    this.worker = new threads.Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; lengths: Int32Array; out: ArrayBuffer; input: ArrayBuffer }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      p?.resolve(m);
    });
    const fail = (e: unknown) => {
      this.broken = true;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`inflate worker exited with code ${code}`)));
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  run(kind: InflateKind, input: ArrayBuffer, spans: Int32Array, max: number, out: ArrayBuffer) {
    const id = this.nextId++;
    // A worker with a batch in flight must keep the process alive until the answer comes back.
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<{ lengths: Int32Array; out: ArrayBuffer; input: ArrayBuffer }>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, kind, input, spans, max, out }, [input, out]);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** Workers shared by every reader in the process, like the thread pool; each caller says how many it may use. */
let lanes: Lane[] = [];
/** Loaded with the first lane: every command would otherwise pay ~6 ms at start-up for it. */
let threads: typeof import('node:worker_threads') | undefined;
/** Set when a worker failed: one that failed would fail again, so the main thread inflates from then on. */
let disabled = false;

/**
 * Worker lanes for `jobs` inflating threads (qemu-img's -m counts the main thread as one: `-m 1`
 * inflates on the main thread only); by default one per core beyond the main thread's, at most 4.
 */
function laneLimit(jobs: number | undefined): number {
  if (disabled) return 0;
  return Math.max(0, Math.min(4, jobs === undefined ? availableParallelism() - 1 : Math.floor(jobs) - 1));
}

/** Stops the workers (they never keep the process alive, but tests and long-lived hosts may want them gone). */
export async function closeInflateLanes(): Promise<void> {
  const all = lanes;
  lanes = [];
  await Promise.all(all.map((l) => l.terminate()));
}

function freeLane(limit: number): Lane | undefined {
  if (lanes.some((l) => l.broken)) {
    disabled = true;
    lanes = lanes.filter((l) => !l.broken);
    return undefined;
  }
  const idle = lanes.slice(0, limit).find((l) => !l.busy);
  if (idle) return idle;
  if (lanes.length < limit && threads) {
    const lane = new Lane(threads);
    lanes.push(lane);
    return lane;
  }
  return undefined;
}

/** Batches smaller than this are not worth a message. */
const MIN_BATCH = 4;

/**
 * Inflates each payload, expecting at most `max` bytes from each, on a free worker, and hands the
 * outputs to `use` (`undefined` for a payload the worker could not inflate). The outputs are views
 * of a buffer the lane reuses: `use` must copy what it keeps before it returns. Resolves to false,
 * without calling `use`, when no worker is free: the caller inflates the batch itself. `jobs`
 * caps the inflating threads, the main thread included (qemu-img -m).
 */
export async function inflateOnLane(
  kind: InflateKind,
  payloads: Uint8Array[],
  max: number,
  use: (outputs: Array<Uint8Array | undefined>) => void,
  jobs?: number,
): Promise<boolean> {
  if (payloads.length < MIN_BATCH) return false;
  const limit = laneLimit(jobs);
  if (!threads && limit > 0) threads = await import('node:worker_threads');
  const lane = freeLane(limit);
  if (!lane) return false;
  let inputBytes = 0;
  for (const p of payloads) inputBytes += p.length;
  const input = lane.spareInput && lane.spareInput.byteLength >= inputBytes ? lane.spareInput : new ArrayBuffer(inputBytes);
  const outBytes = payloads.length * max;
  const out = lane.spareOutput && lane.spareOutput.byteLength >= outBytes ? lane.spareOutput : new ArrayBuffer(outBytes);
  lane.spareInput = lane.spareOutput = undefined;
  const packed = new Uint8Array(input);
  const spans = new Int32Array(payloads.length * 2);
  let at = 0;
  payloads.forEach((p, i) => {
    packed.set(p, at);
    spans[2 * i] = at;
    spans[2 * i + 1] = p.length;
    at += p.length;
  });
  let r: { lengths: Int32Array; out: ArrayBuffer; input: ArrayBuffer };
  try {
    r = await lane.run(kind, input, spans, max, out);
  } catch {
    return false; // the lane is broken and dropped; the caller inflates on the main thread
  }
  try {
    use(Array.from(r.lengths, (n, i) => (n < 0 ? undefined : new Uint8Array(r.out, i * max, n))));
  } finally {
    lane.spareInput = r.input;
    lane.spareOutput = r.out;
  }
  return true;
}
