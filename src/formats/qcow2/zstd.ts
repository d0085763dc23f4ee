/**
 * zstd decoding of one qcow2 compressed cluster, with QEMU's framing rules
 * (block/qcow2-threads.c qcow2_zstd_decompress): the payload is one or more standard zstd frames
 * with no length prefix, decoded until exactly cluster_size bytes are out; whatever follows the
 * frame that completes the cluster is ignored, since the reader is handed whole 512-byte sectors.
 *
 * Why not src/stream/compress.ts zstdDecodeExact: fzstd's one-shot decompress() with an output
 * buffer restarts every frame at offset 0 of that buffer (multi-frame payloads come out wrong),
 * reports the buffer's full length whatever a single frame produced, and parses trailing sector
 * padding as another frame (error). So frames are delimited here, from their block headers, and
 * each is fed to fzstd's streaming decoder exactly, with its output counted as it comes.
 *
 * Frame format: RFC 8878 §3.1.1. Memory: fzstd allocates a window per frame, so the window (or
 * the declared content size) is bounded before decoding.
 */
import { Decompress } from 'fzstd';
import { CorruptImageError } from '../../errors.js';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block_Maximum_Size (RFC 8878 §3.1.1.2.3): no block holds more than 128 KiB. */
const MAX_BLOCK = 128 * 1024;
/**
 * Largest window we allocate for a frame without a usable content size: 8 MiB, the window of
 * zstd's strongest non-"ultra" levels. QEMU's frames declare their size (one-shot ZSTD_e_end),
 * so a real cluster never needs more.
 */
const MAX_WINDOW = 8 * 1024 * 1024;

interface Where {
  file?: string;
  offset?: number;
  field?: string;
}

const u32le = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

function corrupt(msg: string, where: Where, cause?: unknown): CorruptImageError {
  return new CorruptImageError(`zstd data ${msg}`, { ...where, field: where.field ?? 'compressed cluster', cause });
}

interface FrameInfo {
  /** Bytes the frame occupies in the input. */
  length: number;
  /** Window the decoder will allocate (fzstd: frame content size for single-segment frames). */
  window: number;
  /** Declared decompressed size, when present. */
  contentSize?: number;
}

/** Reads a standard frame's header and walks its block headers to find where it ends. */
export function zstdFrameInfo(data: Uint8Array, at: number, where: Where): FrameInfo {
  let p = at + 4;
  if (p >= data.length) throw corrupt('ends inside a frame header', where);
  const fhd = data[p++];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const reserved = (fhd >> 3) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  if (reserved) throw corrupt('frame header has its reserved bit set', where);
  let window = 0;
  if (!singleSegment) {
    if (p >= data.length) throw corrupt('ends inside a frame header', where);
    const wd = data[p++];
    const base = 2 ** (10 + (wd >> 3));
    window = base + (base / 8) * (wd & 7);
  }
  p += [0, 1, 2, 4][dictFlag];
  const fcsBytes = fcsFlag === 0 ? singleSegment : 2 ** fcsFlag;
  if (p + fcsBytes > data.length) throw corrupt('ends inside a frame header', where);
  let contentSize: number | undefined;
  if (fcsBytes > 0) {
    let v = 0;
    for (let i = fcsBytes - 1; i >= 0; i--) v = v * 256 + data[p + i];
    contentSize = fcsBytes === 2 ? v + 256 : v;
    p += fcsBytes;
  }
  if (singleSegment) window = contentSize ?? 0;
  for (;;) {
    if (p + 3 > data.length) throw corrupt('ends inside a block header', where);
    const bh = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16);
    p += 3;
    const last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw corrupt('has a block of reserved type', where);
    if (size > MAX_BLOCK) throw corrupt(`has a block of ${size} bytes (more than 128 KiB)`, where);
    p += type === 1 ? 1 : size; // RLE blocks store one byte, repeated `size` times
    if (p > data.length) throw corrupt('ends inside a block', where);
    if (last) break;
  }
  if (checksum) p += 4;
  if (p > data.length) throw corrupt('ends inside the frame checksum', where);
  return { length: p - at, window, contentSize };
}

/**
 * Decodes the frames at the start of `data` into exactly `expected` bytes. Skippable frames are
 * skipped; bytes after the frame that completes the output are ignored (QEMU never looks at them).
 */
export function zstdDecodeCluster(data: Uint8Array, expected: number, where: Where = {}): Uint8Array {
  const out = new Uint8Array(expected);
  let produced = 0;
  let pos = 0;
  while (produced < expected) {
    if (pos + 4 > data.length) throw corrupt(`ends after ${produced} of ${expected} bytes`, where);
    const magic = u32le(data, pos);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (pos + 8 > data.length) throw corrupt('ends inside a skippable frame', where);
      pos += 8 + u32le(data, pos + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt(`has no frame where ${expected - produced} more bytes were due (magic 0x${magic.toString(16)})`, where);
    const f = zstdFrameInfo(data, pos, where);
    const room = expected - produced;
    if (f.contentSize !== undefined && f.contentSize > room) {
      throw corrupt(`frame declares ${f.contentSize} bytes where only ${room} remain of the cluster`, where);
    }
    if (f.window > MAX_WINDOW) {
      throw corrupt(`frame asks for a ${f.window}-byte window (limit ${MAX_WINDOW})`, where);
    }
    const before = produced;
    const d = new Decompress((chunk) => {
      if (chunk.length > expected - produced) throw corrupt(`decodes to more than the ${expected}-byte cluster`, where);
      out.set(chunk, produced);
      produced += chunk.length;
    });
    try {
      d.push(data.subarray(pos, pos + f.length), true);
    } catch (e) {
      if (e instanceof CorruptImageError) throw e;
      throw corrupt(`does not decode: ${(e as Error)?.message ?? String(e)}`, where, e);
    }
    if (f.contentSize !== undefined && produced - before !== f.contentSize) {
      throw corrupt(`frame decodes to ${produced - before} bytes but declares ${f.contentSize}`, where);
    }
    pos += f.length;
  }
  return out;
}
