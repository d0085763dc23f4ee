/**
 * The real-world sample images committed in fixtures/real-world/ (see its README.md for
 * provenance). Files stored gzip'd (`NAME.gz`) are decompressed once per test process into a
 * temporary folder; tests name samples by their logical name and never see the `.gz`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

export const REAL_WORLD_DIR = fileURLToPath(new URL('../../fixtures/real-world/', import.meta.url));

const NOT_SAMPLES = new Set(['README.md', 'SHA256SUMS']);

let scratch: string | undefined;
const ready = new Map<string, string>();

/** Every sample's logical name (a stored `x.vmdk.gz` is `x.vmdk`), sorted. */
export function realWorldNames(): string[] {
  return readdirSync(REAL_WORLD_DIR)
    .filter((f) => !NOT_SAMPLES.has(f))
    .map((f) => (f.endsWith('.gz') ? f.slice(0, -3) : f))
    .sort();
}

/** The path of a sample's bytes as a plain file (read-only by convention: copy before mutating). */
export function realWorld(name: string): string {
  const done = ready.get(name);
  if (done) return done;
  const plain = join(REAL_WORLD_DIR, name);
  let path: string;
  if (existsSync(plain)) {
    path = plain;
  } else {
    const packed = `${plain}.gz`;
    if (!existsSync(packed)) throw new Error(`no real-world sample named ${name} in ${REAL_WORLD_DIR}`);
    if (!scratch) {
      const dir = mkdtempSync(join(tmpdir(), 'guestkit-real-world-'));
      scratch = dir;
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
    path = join(scratch, name);
    writeFileSync(path, gunzipSync(readFileSync(packed)));
  }
  ready.set(name, path);
  return path;
}

/** Every sample's bytes, for fuzzing seeds. */
export function realWorldBytes(): Uint8Array[] {
  return realWorldNames().map((n) => new Uint8Array(readFileSync(realWorld(n))));
}
