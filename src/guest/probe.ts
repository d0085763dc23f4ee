/**
 * blkid-style identification of whatever sits in a view: a registry of probes, each returning a
 * score or nothing, never throwing on "not mine". The highest score wins; on a tie the earlier
 * probe, so containers (RAID, LVM, LUKS) are named before the filesystems they may look like.
 */
import { GuestkitError } from '../errors.js';
import { bitlockerProbe, luksProbe, lvmProbe, mdProbe, zfsProbe } from './probes/containers.js';
import { extProbe } from './probes/ext.js';
import { exfatProbe, ntfsProbe } from './probes/exfat-ntfs.js';
import { fatProbe } from './probes/fat.js';
import { apfsProbe, hfsplusProbe, refsProbe } from './probes/others.js';
import { isoProbe, swapProbe, udfProbe } from './probes/swap-iso-udf.js';
import { btrfsProbe, xfsProbe } from './probes/xfs-btrfs.js';
import type { Identification, Probe, ProbeHit } from './probes/types.js';
import type { BlockView } from './view.js';

export type { Identification, Probe, ProbeHit } from './probes/types.js';

export const PROBES: readonly Probe[] = [
  mdProbe,
  lvmProbe,
  luksProbe,
  bitlockerProbe,
  extProbe,
  xfsProbe,
  btrfsProbe,
  exfatProbe,
  ntfsProbe,
  refsProbe,
  fatProbe,
  swapProbe,
  udfProbe,
  isoProbe,
  hfsplusProbe,
  apfsProbe,
  zfsProbe,
];

/**
 * What `view` holds, or undefined. A probe that trips over a damaged structure while looking (a
 * typed error from a read) counts as "not mine", as blkid skips it; anything else is a bug and
 * propagates.
 */
export async function identify(view: BlockView, probes: readonly Probe[] = PROBES): Promise<Identification | undefined> {
  let best: ProbeHit | undefined;
  for (const p of probes) {
    let hit: ProbeHit | undefined;
    try {
      hit = await p.probe(view);
    } catch (e) {
      if (e instanceof GuestkitError) continue;
      throw e;
    }
    if (hit && (!best || hit.score > best.score)) best = hit;
  }
  if (!best) return undefined;
  const { score: _score, ...id } = best;
  return id;
}

/** The identification as `blkid -p -o export` keys (TYPE, UUID, LABEL, VERSION, BLOCK_SIZE, USAGE and extras). */
export function blkidKeys(id: Identification): Record<string, string> {
  const out: Record<string, string> = { TYPE: id.type, USAGE: id.usage };
  if (id.uuid !== undefined) out.UUID = id.uuid;
  if (id.label !== undefined) out.LABEL = id.label;
  if (id.version !== undefined) out.VERSION = id.version;
  if (id.blockSize !== undefined) out.BLOCK_SIZE = String(id.blockSize);
  return { ...out, ...id.extra };
}
