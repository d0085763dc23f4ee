/**
 * Finding and opening the parent of a differencing VHD. The child names its parent in up to
 * eight parent locators (spec, "Parent Locator Entries") and in the parent unicode name; every
 * name is untrusted: it is resolved against the child's folder with the same confinement as a
 * qcow2 backing file (shared/paths.ts). A name written on another system (an absolute Windows path
 * with a drive letter, a Mac alias) cannot be followed as written, so its file name is looked
 * for next to the child instead — safe because the parent's unique id must then match the id the
 * child recorded (spec, "Parent Unique ID"), which is checked for every candidate.
 */
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { ConfinementError, CorruptImageError, GuestkitError, IoError, UsageError } from '../../errors.js';
import { FileSource, type ByteSource } from '../../stream/source.js';
import { openedInside, resolveConfined, type ConfineOptions } from '../shared/paths.js';
import { formatUuid, uuidEqual } from '../shared/uuid.js';
import type { ImageReader, OpenContext } from '../types.js';
import { readFooter } from './footer.js';
import { fourccText, Platform, type VhdParentLocator } from './layout.js';

/** Longest locator we read: a Windows path is at most 32 767 UTF-16 units. */
export const MAX_LOCATOR_BYTES = 65_536;
/** Fixed part of a classic Mac OS alias record; the Str63 file name sits at offset 50. */
const ALIAS_FILE_NAME_AT = 50;
const ALIAS_FIXED_SIZE = 150;
/** Alias record tags: 18 = POSIX path of the file within its volume, 19 = volume mount point. */
const ALIAS_TAG_POSIX_PATH = 18;
const ALIAS_TAG_MOUNT_POINT = 19;

export interface ParentName {
  /** Platform code as text ("W2ru", "W2ku", "MacX", "Mac ", or "name" for the parent unicode name). */
  platform: string;
  /** The name as the child stores it. */
  written: string;
  /** Paths to try, in POSIX form, relative to the child's folder unless absolute. */
  candidates: string[];
}

/** Lower numbers are tried first: relative names are the ones that survive moving a chain. */
const PLATFORM_ORDER: Record<number, number> = {
  [Platform.w2ru]: 0,
  [Platform.wi2r]: 1,
  [Platform.macx]: 2,
  [Platform.mac]: 3,
  [Platform.w2ku]: 4,
  [Platform.wi2k]: 5,
};

const utf16le = new TextDecoder('utf-16le');
const utf16be = new TextDecoder('utf-16be');
const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

const untilNul = (s: string) => {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
};

/** Candidates for a Windows path: relative ones as written; absolute ones by file name (and as is when POSIX-absolute). */
function windowsCandidates(path: string): string[] {
  let p = path.replace(/^\\\\\?\\/, '');
  const posixLike = p.replace(/\\/g, '/');
  const isDrive = /^[A-Za-z]:/.test(p);
  const isUnc = p.startsWith('\\\\') || posixLike.startsWith('//');
  p = posixLike;
  const base = posix.basename(p);
  if (isDrive || isUnc) return base ? [base] : [];
  return p.startsWith('/') ? [p, base] : [p];
}

/** A MacX locator is a file URL ("file://localhost/Users/x/parent.vhd") or a plain path. */
function macxCandidates(text: string): string[] {
  let p = text;
  const m = /^file:\/\/(?:localhost)?(\/.*)$/i.exec(p);
  if (m) {
    try {
      p = decodeURIComponent(m[1]);
    } catch {
      p = m[1];
    }
  }
  const base = posix.basename(p);
  return p.startsWith('/') ? [p, base] : [p];
}

/** A Mac OS alias record: its file name (Str63 at offset 50) and, when tagged, its POSIX path. */
function macAliasName(blob: Uint8Array): { written: string; candidates: string[] } | undefined {
  if (blob.length < ALIAS_FIXED_SIZE) return undefined;
  const nameLength = Math.min(blob[ALIAS_FILE_NAME_AT], 63);
  const name = latin1.decode(blob.subarray(ALIAS_FILE_NAME_AT + 1, ALIAS_FILE_NAME_AT + 1 + nameLength));
  let posixPath: string | undefined;
  let mount: string | undefined;
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.length);
  // Tagged items: i16 tag, u16 length, data padded to an even length; tag -1 ends the list.
  for (let at = ALIAS_FIXED_SIZE; at + 4 <= blob.length; ) {
    const tag = dv.getInt16(at);
    const len = dv.getUint16(at + 2);
    if (tag === -1 || at + 4 + len > blob.length) break;
    const data = blob.subarray(at + 4, at + 4 + len);
    if (tag === ALIAS_TAG_POSIX_PATH) posixPath = utf8.decode(data);
    if (tag === ALIAS_TAG_MOUNT_POINT) mount = utf8.decode(data);
    at += 4 + len + (len & 1);
  }
  const candidates: string[] = [];
  if (posixPath) candidates.push(mount && mount !== '/' ? posix.join(mount, posixPath) : posixPath);
  if (name) candidates.push(name);
  if (!candidates.length) return undefined;
  return { written: posixPath ?? name, candidates };
}

/**
 * Decodes the locators and the parent unicode name into names to try, best first. A locator that
 * cannot be read (beyond the file, absurdly long) is skipped with a warning: another may work.
 */
export async function parentNames(
  source: ByteSource,
  fileSize: number,
  locators: VhdParentLocator[],
  parentUnicodeName: Uint8Array,
  locatorTableOffset: number,
  warnings: string[],
): Promise<ParentName[]> {
  const found: Array<ParentName & { rank: number }> = [];
  for (let i = 0; i < locators.length; i++) {
    const l = locators[i];
    const rank = PLATFORM_ORDER[l.platformCode];
    if (l.platformCode === Platform.none || l.dataLength === 0) continue;
    const platform = fourccText(l.platformCode);
    if (rank === undefined) {
      warnings.push(`parent locator ${i} has unknown platform code "${platform}"; ignored`);
      continue;
    }
    if (l.dataLength > MAX_LOCATOR_BYTES || l.dataOffset + l.dataLength > fileSize) {
      warnings.push(`parent locator ${i} (${platform}, ${l.dataLength} bytes at ${l.dataOffset}) lies outside the file or is too long; ignored (entry at ${locatorTableOffset + i * 24})`);
      continue;
    }
    const blob = await source.read(l.dataOffset, l.dataLength);
    let entry: { written: string; candidates: string[] } | undefined;
    if (l.platformCode === Platform.w2ru || l.platformCode === Platform.w2ku) {
      const written = untilNul(utf16le.decode(blob.subarray(0, blob.length & ~1)));
      entry = { written, candidates: windowsCandidates(written) };
    } else if (l.platformCode === Platform.wi2r || l.platformCode === Platform.wi2k) {
      const written = untilNul(latin1.decode(blob));
      entry = { written, candidates: windowsCandidates(written) };
    } else if (l.platformCode === Platform.macx) {
      const written = untilNul(utf8.decode(blob));
      entry = { written, candidates: macxCandidates(written) };
    } else {
      entry = macAliasName(blob);
    }
    if (!entry || !entry.written) {
      warnings.push(`parent locator ${i} (${platform}) holds no usable name; ignored`);
      continue;
    }
    found.push({ platform: platform.trimEnd(), rank, ...entry, candidates: entry.candidates.filter((c) => c.length > 0) });
  }
  found.sort((a, b) => a.rank - b.rank);
  const names: ParentName[] = found.map(({ rank: _rank, ...n }) => n);
  const unicode = untilNul(utf16be.decode(parentUnicodeName));
  if (unicode) names.push({ platform: 'name', written: unicode, candidates: windowsCandidates(unicode) });
  return names;
}

export interface OpenedParent {
  reader: ImageReader;
  name: ParentName;
  path: string;
}

/** The unique id a VHD reader exposes, so that a child can check its parent. */
export interface HasUniqueId {
  readonly uniqueId: Uint8Array;
}
const hasUniqueId = (r: ImageReader): r is ImageReader & HasUniqueId => (r as Partial<HasUniqueId>).uniqueId instanceof Uint8Array;

/** The unique id in the footer of the VHD at `path`, read without opening anything it names. */
async function footerUniqueId(path: string, confine: ConfineOptions): Promise<Uint8Array> {
  const source = await FileSource.open(path, path, openedInside(path, confine));
  try {
    return (await readFooter(source, source.size, path, [])).footer.uniqueId;
  } finally {
    await source.close();
  }
}

function wrongId(path: string, id: Uint8Array | undefined, expected: Uint8Array, file: string, offset: number): CorruptImageError {
  return new CorruptImageError(`parent ${path} has unique id ${id ? formatUuid(id, 'rfc') : '(none)'}, but the child expects ${formatUuid(expected, 'rfc')}`, {
    file,
    field: 'parentUuid',
    offset,
  });
}

/**
 * Opens the first candidate that exists, stays inside the child's folder (unless allowed) and
 * carries the unique id the child expects. Fails with the most telling reason otherwise. Each
 * candidate costs one footer read; only the one that matches is opened, with its chain, so the
 * work is linear in the chain's depth.
 */
export async function openParent(
  names: ParentName[],
  expectedUuid: Uint8Array,
  uuidOffset: number,
  ctx: OpenContext,
): Promise<OpenedParent> {
  if (!ctx.path) {
    throw new UsageError('a differencing VHD needs to be opened from a file so that its parent can be found', { file: ctx.file, field: 'parent locator' });
  }
  if (names.length === 0) {
    throw new CorruptImageError('differencing VHD names no parent (no usable parent locator or parent name)', { file: ctx.file, field: 'parent locator' });
  }
  const tried: string[] = [];
  let refusal: GuestkitError | undefined;
  let mismatch: GuestkitError | undefined;
  let unusable: GuestkitError | undefined;
  const seen = new Set<string>();
  for (const name of names) {
    for (const candidate of name.candidates) {
      let path: string;
      const confine = { referrer: ctx.path, what: 'parent locator', allowOutside: ctx.allowOutside };
      try {
        path = resolveConfined(candidate, confine);
      } catch (e) {
        if (e instanceof ConfinementError || e instanceof UsageError) {
          refusal ??= e;
          continue;
        }
        throw e;
      }
      if (seen.has(path)) continue;
      seen.add(path);
      tried.push(path);
      if (!existsSync(path)) continue;
      // The id first, from the footer alone: opening a wrong candidate's whole chain at every
      // level made the search exponential in the depth (two candidates per level: 2^depth opens).
      let id: Uint8Array;
      try {
        id = await footerUniqueId(path, confine);
      } catch (e) {
        if (!(e instanceof GuestkitError)) throw e;
        unusable ??= e;
        continue;
      }
      if (!uuidEqual(id, expectedUuid)) {
        mismatch ??= wrongId(path, id, expectedUuid, ctx.file, uuidOffset);
        continue;
      }
      const reader = await ctx.openImage(path, 'vhd', ctx);
      if (hasUniqueId(reader) && uuidEqual(reader.uniqueId, expectedUuid)) return { reader, name, path };
      // The file changed between the two reads of its footer.
      mismatch ??= wrongId(path, hasUniqueId(reader) ? reader.uniqueId : undefined, expectedUuid, ctx.file, uuidOffset);
      await reader.close();
    }
  }
  if (mismatch) throw mismatch;
  if (unusable) throw unusable;
  if (refusal && tried.length === 0) throw refusal;
  throw new IoError(`parent image not found (tried ${tried.length ? tried.join(', ') : 'no path'})${refusal ? `; also refused: ${refusal.detail}` : ''}`, {
    file: ctx.file,
    field: 'parent locator',
    errno: 'ENOENT',
  });
}
