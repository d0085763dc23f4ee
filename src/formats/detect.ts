/**
 * Format detection by content, never by extension: every driver probes the head and the tail of
 * the file; the highest score wins; raw answers every probe with the lowest score. A probe never
 * throws: a driver that fails while probing simply does not claim the file.
 */
import type { ByteSource } from '../stream/source.js';
import type { FormatDriver, ProbeInput, ProbeResult } from './types.js';
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

/** One driver's probe, held to its contract: a probe that throws does not claim the bytes. */
export function probeWith(driver: FormatDriver, input: ProbeInput): ProbeResult | null {
  try {
    return driver.probe(input);
  } catch {
    return null;
  }
}

export function detectBytes(input: ProbeInput, candidates: readonly FormatDriver[] = drivers()): Detection {
  let best: Detection | undefined;
  for (const driver of candidates) {
    const r = probeWith(driver, input);
    if (r && (!best || r.score > best.score)) best = { driver, format: driver.name, subformat: r.subformat, score: r.score };
  }
  // raw's probe always answers, so `best` is set whenever raw is registered.
  return best!;
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
  const d = detectBytes(await readProbeInput(source));
  if (!d.driver.refineProbe || !source.seekable) return d;
  const r = await d.driver.refineProbe(source, { score: d.score, subformat: d.subformat }).catch(() => undefined);
  return r ? { ...d, subformat: r.subformat } : d;
}
