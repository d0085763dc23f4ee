/**
 * The OVF manifest (DSP0243 §5.1): one digest per file, written `SHA256(file)= hex` by ovftool and
 * VirtualBox and `SHA256 (file) = hex` by others. Parsing is line-based and bounded.
 */
import { CorruptImageError, LimitExceededError } from '../errors.js';

/** A manifest names a handful of files; a megabyte is thousands of lines. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export type DigestAlgorithm = 'sha1' | 'sha256' | 'sha512';
export interface ManifestEntry {
  algorithm: DigestAlgorithm;
  file: string;
  digest: string;
}

const LENGTHS: Record<DigestAlgorithm, number> = { sha1: 40, sha256: 64, sha512: 128 };

export function parseManifest(textIn: string, file: string): ManifestEntry[] {
  if (textIn.length > MAX_MANIFEST_BYTES) throw new LimitExceededError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, { file });
  const out: ManifestEntry[] = [];
  let offset = 0;
  for (const raw of textIn.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const here = offset;
    offset += raw.length + 1;
    if (line.trim() === '') continue;
    const m = /^(SHA1|SHA256|SHA512) ?\((.+)\) ?= ?([0-9A-Fa-f]+)\s*$/.exec(line);
    if (!m) throw new CorruptImageError(`manifest line is not "ALGO(file)= digest": ${JSON.stringify(line.slice(0, 60))}`, { file, offset: here });
    const algorithm = m[1]!.toLowerCase() as DigestAlgorithm;
    const digest = m[3]!.toLowerCase();
    if (digest.length !== LENGTHS[algorithm]) throw new CorruptImageError(`${m[1]} digest of ${m[2]} has ${digest.length} hex digits`, { file, offset: here });
    out.push({ algorithm, file: m[2]!, digest });
  }
  return out;
}
