/** Types reported by name only: ReFS, HFS+ (and HFSX), APFS. */
import { dv, readAt, startsWith } from './bytes.js';
import type { Probe } from './types.js';

export const refsProbe: Probe = {
  name: 'ReFS',
  async probe(view) {
    const b = await readAt(view, 0, 32);
    return b && startsWith(b, 3, 'ReFS\0\0\0\0') && startsWith(b, 16, 'FSRS') ? { score: 100, type: 'ReFS', usage: 'filesystem' } : undefined;
  },
};

export const hfsplusProbe: Probe = {
  name: 'hfsplus',
  async probe(view) {
    const b = await readAt(view, 1024, 512);
    if (!b) return undefined;
    const version = dv(b).getUint16(2, false);
    if ((startsWith(b, 0, 'H+') && version === 4) || (startsWith(b, 0, 'HX') && version === 5)) return { score: 100, type: 'hfsplus', usage: 'filesystem' };
    // An HFS wrapper with an embedded HFS+ volume (signature at drEmbedSigWord, 0x7c).
    if (startsWith(b, 0, 'BD') && startsWith(b, 0x7c, 'H+')) return { score: 100, type: 'hfsplus', usage: 'filesystem' };
    return undefined;
  },
};

export const apfsProbe: Probe = {
  name: 'apfs',
  async probe(view) {
    const b = await readAt(view, 0, 64);
    // The container superblock's object type (0x01, ephemeral/physical flags aside) and its magic.
    return b && startsWith(b, 32, 'NXSB') && (dv(b).getUint16(24, true) & 0xffff) === 1 ? { score: 100, type: 'apfs', usage: 'filesystem' } : undefined;
  },
};
