/** Shared helpers of the guest-wing tests: in-memory disks and the fixtures folder. */
import { fileURLToPath } from 'node:url';
import { RawReader } from '../../src/formats/raw/reader.js';
import { BufferSource } from '../../src/stream/source.js';
import type { ImageReader } from '../../src/formats/types.js';

export const GUEST_FIXTURES = fileURLToPath(new URL('../../fixtures/guest/', import.meta.url));

/** A raw image reader over bytes in memory. */
export function memoryReader(bytes: Uint8Array, name = 'mem.img'): ImageReader {
  return new RawReader(new BufferSource(bytes, name), bytes.length, undefined);
}
