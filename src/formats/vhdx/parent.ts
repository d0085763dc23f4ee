/**
 * Opening the parent of a differencing VHDX (MS-VHDX 2.6.2.6.1). The locator names it three ways;
 * relative_path is tried first (it survives moving a chain), then the file names of
 * absolute_win32_path and volume_path next to the child (a Windows drive or volume path cannot be
 * followed here). Every name is confined like any path read from an image, and the parent's
 * DataWriteGuid must equal parent_linkage (or parent_linkage2), so a wrong file is never used.
 */
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { ConfinementError, CorruptImageError, IoError, UsageError, type GuestkitError } from '../../errors.js';
import { resolveConfined } from '../shared/paths.js';
import { formatUuid, parseUuid, uuidEqual } from '../shared/uuid.js';
import type { ImageReader, OpenContext } from '../types.js';
import type { ParentLocator } from './parent-locator.js';

export interface HasDataWriteGuid {
  readonly dataWriteGuid: Uint8Array;
}
const hasGuid = (r: ImageReader): r is ImageReader & HasDataWriteGuid => (r as Partial<HasDataWriteGuid>).dataWriteGuid instanceof Uint8Array;

/** Paths to try, in POSIX form. */
export function parentCandidates(loc: ParentLocator): Array<{ path: string; written: string }> {
  const out: Array<{ path: string; written: string }> = [];
  const rel = loc.entries.get('relative_path');
  if (rel) out.push({ path: rel.replace(/\\/g, '/').replace(/^\.\//, ''), written: rel });
  for (const key of ['absolute_win32_path', 'volume_path']) {
    const v = loc.entries.get(key);
    if (v) out.push({ path: posix.basename(v.replace(/\\/g, '/')), written: v });
  }
  return out.filter((c) => c.path.length > 0);
}

export async function openVhdxParent(loc: ParentLocator, ctx: OpenContext, locatorOffset: number): Promise<{ reader: ImageReader; path: string; written: string }> {
  const where = { file: ctx.file, field: 'parent locator', offset: locatorOffset };
  if (!ctx.path) throw new UsageError('a differencing VHDX must be opened from a file so that its parent can be found', where);
  const linkages = [loc.linkage];
  const l2 = loc.entries.get('parent_linkage2');
  const g2 = l2 ? parseUuid(l2.replace(/^\{|\}$/g, ''), 'guid') : undefined;
  if (g2) linkages.push(g2);
  const candidates = parentCandidates(loc);
  if (!candidates.length) throw new CorruptImageError('the parent locator names no path (relative_path, absolute_win32_path, volume_path)', where);
  const tried: string[] = [];
  let refusal: GuestkitError | undefined;
  let mismatch: GuestkitError | undefined;
  for (const { path: c, written } of candidates) {
    let path: string;
    try {
      path = resolveConfined(c, { referrer: ctx.path, what: 'parent locator', allowOutside: ctx.allowOutside });
    } catch (e) {
      if (e instanceof ConfinementError || e instanceof UsageError) {
        refusal ??= e;
        continue;
      }
      throw e;
    }
    if (tried.includes(path)) continue;
    tried.push(path);
    if (!existsSync(path)) continue;
    const reader = await ctx.openImage(path, 'vhdx', ctx);
    if (hasGuid(reader) && linkages.some((g) => uuidEqual(g, reader.dataWriteGuid))) return { reader, path, written };
    mismatch ??= new CorruptImageError(
      `parent ${path} has DataWriteGuid ${hasGuid(reader) ? formatUuid(reader.dataWriteGuid, 'guid') : '(none)'}, but the child's parent_linkage is ${formatUuid(loc.linkage, 'guid')}`,
      where,
    );
    await reader.close();
  }
  if (mismatch) throw mismatch;
  if (refusal && !tried.length) throw refusal;
  throw new IoError(`parent image not found (tried ${tried.length ? tried.join(', ') : 'no path'})`, { ...where, errno: 'ENOENT' });
}
