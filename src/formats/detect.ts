/**
 * Format detection by content, never by extension: every driver probes the head and the tail of
 * the file; the highest score wins; raw answers every probe with the lowest score. A probe never
 * throws: a driver that fails while probing simply does not claim the file.
 */
import type { ByteSource } from '../stream/source.js';
import type { FormatDriver, ProbeInput } from './types.js';
import { drivers } from './registry.js';

/** Enough to see an embedded VMDK descriptor (sector 1, 20 sectors) and every magic. */
export const PROBE_HEAD_BYTES = 64 * 1024;
/** A VHD footer is the last 512 bytes. */
export const PROBE_TAIL_BYTES = 512;

export interface Detection {
  driver: FormatDriver;
  format: string;
  subformat?: string;
  score: number;
}

/** The best claim on `input`; always one among all drivers (raw claims everything), possibly none among `candidates`. */
export function detectBytes(input: ProbeInput): Detection;
export function detectBytes(input: ProbeInput, candidates: readonly FormatDriver[]): Detection | undefined;
export function detectBytes(input: ProbeInput, candidates: readonly FormatDriver[] = drivers()): Detection | undefined {
  let best: Detection | undefined;
  for (const driver of candidates) {
    let r;
    try {
      r = driver.probe(input);
    } catch {
      r = null;
    }
    if (r && (!best || r.score > best.score)) best = { driver, format: driver.name, subformat: r.subformat, score: r.score };
  }
  return best;
}

export async function readProbeInput(source: ByteSource): Promise<ProbeInput> {
  const head = await source.readUpTo(0, PROBE_HEAD_BYTES);
  let tail: Uint8Array = new Uint8Array(0);
  if (source.seekable && source.size !== undefined && source.size >= PROBE_TAIL_BYTES) {
    tail = await source.read(source.size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES);
  }
  return { head, tail, size: source.size };
}

export async function detectSource(source: ByteSource): Promise<Detection> {
  return detectBytes(await readProbeInput(source));
}
