/**
 * Containers that are detected and reported, not opened (except LVM2, which src/guest/volumes
 * opens): LVM2 physical volumes, LUKS1/2, MD RAID members, BitLocker, ZFS pool members.
 */
import { cString, dv, latin1, readAt, startsWith, uuidText } from './bytes.js';
import type { Probe, ProbeHit } from './types.js';

/** LVM prints a PV/VG/LV id of 32 characters in groups 6-4-4-4-4-4-6. */
export function lvmUuid(raw: string): string {
  const g = [6, 4, 4, 4, 4, 4, 6];
  const out: string[] = [];
  let at = 0;
  for (const n of g) {
    out.push(raw.slice(at, at + n));
    at += n;
  }
  return out.join('-');
}

/** The LVM2 label may sit in any of the first four sectors (lib/label/label.c LABEL_SCAN_SECTORS). */
export const LVM_LABEL_SECTORS = 4;

export const lvmProbe: Probe = {
  name: 'LVM2_member',
  async probe(view) {
    for (let s = 0; s < LVM_LABEL_SECTORS; s++) {
      const sec = await readAt(view, s * 512, 512);
      if (!sec) return undefined;
      if (!startsWith(sec, 0, 'LABELONE') || !startsWith(sec, 24, 'LVM2 001')) continue;
      const d = dv(sec);
      if (Number(d.getBigUint64(8, true)) !== s) continue;
      const pvh = d.getUint32(20, true);
      if (pvh + 32 > 512) continue;
      return { score: 100, type: 'LVM2_member', usage: 'raid', uuid: lvmUuid(latin1(sec.subarray(pvh, pvh + 32))), version: 'LVM2 001' };
    }
    return undefined;
  },
};

export const luksProbe: Probe = {
  name: 'crypto_LUKS',
  async probe(view) {
    const h = await readAt(view, 0, 512);
    if (!h || !startsWith(h, 0, 'LUKS\xba\xbe')) return undefined;
    const version = dv(h).getUint16(6, false);
    if (version !== 1 && version !== 2) return undefined;
    const hit: ProbeHit = { score: 100, type: 'crypto_LUKS', usage: 'crypto', version: String(version), uuid: cString(h.subarray(168, 208)) };
    if (version === 2) {
      const label = cString(h.subarray(24, 72));
      if (label) hit.label = label;
      const subsystem = cString(h.subarray(208, 256));
      if (subsystem) hit.extra = { SUBSYSTEM: subsystem };
    }
    return hit;
  },
};

const MD_MAGIC = 0xa92b4efc;
/** 0.90 superblocks live in the last 64 KiB-aligned 64 KiB of the device. */
const MD_RESERVED = 64 * 1024;

export const mdProbe: Probe = {
  name: 'linux_raid_member',
  async probe(view) {
    // 1.x: at the end - 8 KiB (1.0, 4 KiB aligned), at 0 (1.1), at 4 KiB (1.2).
    const candidates: [number, string][] = [
      [Math.floor((view.size - 8192) / 4096) * 4096, '1.0'],
      [0, '1.1'],
      [4096, '1.2'],
    ];
    for (const [at, version] of candidates) {
      const sb = await readAt(view, at, 256);
      if (!sb) continue;
      const d = dv(sb);
      if (d.getUint32(0, true) !== MD_MAGIC || d.getUint32(4, true) !== 1) continue;
      const hit: ProbeHit = { score: 100, type: 'linux_raid_member', usage: 'raid', version, uuid: uuidText(sb.subarray(16, 32)), extra: { UUID_SUB: uuidText(sb.subarray(168, 184)) } };
      const label = cString(sb.subarray(32, 64));
      if (label) hit.label = label;
      return hit;
    }
    if (view.size >= 2 * MD_RESERVED) {
      const at = Math.floor(view.size / MD_RESERVED) * MD_RESERVED - MD_RESERVED;
      const sb = await readAt(view, at, 64);
      if (sb) {
        const d = dv(sb);
        for (const le of [true, false]) {
          if (d.getUint32(0, le) !== MD_MAGIC || d.getUint32(4, le) !== 0) continue;
          const uuid = new Uint8Array(16);
          uuid.set(sb.subarray(20, 24), 0);
          uuid.set(sb.subarray(52, 64), 4);
          return { score: 100, type: 'linux_raid_member', usage: 'raid', version: '0.90.0', uuid: uuidText(uuid) };
        }
      }
    }
    return undefined;
  },
};

/** BitLocker (Windows 7+: "-FVE-FS-"; Vista and To Go: "MSWIN4.1" with the FVE GUID at 0xA0). */
const FVE_GUIDS = ['3bd66749292ed84a8399f6a339e3d001', '3bd66749292ed84a8399f6a339e3d0cb'];

export const bitlockerProbe: Probe = {
  name: 'BitLocker',
  async probe(view) {
    const bs = await readAt(view, 0, 512);
    if (!bs || bs[510] !== 0x55 || bs[511] !== 0xaa) return undefined;
    if (startsWith(bs, 3, '-FVE-FS-')) return { score: 100, type: 'BitLocker', usage: 'crypto' };
    const guid = Array.from(bs.subarray(0xa0, 0xb0), (x) => x.toString(16).padStart(2, '0')).join('');
    if (startsWith(bs, 3, 'MSWIN4.1') && FVE_GUIDS.includes(guid)) return { score: 100, type: 'BitLocker', usage: 'crypto' };
    return undefined;
  },
};

const ZFS_UBERBLOCK_MAGIC = 0x00bab10cn;
const ZFS_LABEL = 256 * 1024;
/** The uberblock ring fills the second half of each 256 KiB label, in slots of 1 KiB (4 KiB with ashift=12). */
const ZFS_RING = 128 * 1024;
/** The head of the ring is enough to see a pool (and stays a cached metadata read, not 128 KiB per device). */
const ZFS_RING_LOOK = 32 * 1024;
/** blkid wants more than one valid uberblock before it calls a device a ZFS member. */
const ZFS_MIN_UBERBLOCKS = 2;

export const zfsProbe: Probe = {
  name: 'zfs_member',
  async probe(view) {
    const ring = ZFS_RING + ZFS_RING_LOOK <= ZFS_LABEL ? await readAt(view, ZFS_RING, ZFS_RING_LOOK) : undefined;
    if (!ring) return undefined;
    const d = dv(ring);
    let found = 0;
    for (let at = 0; at + 8 <= ring.length; at += 1024) {
      const v = d.getBigUint64(at, true);
      if (v === ZFS_UBERBLOCK_MAGIC || d.getBigUint64(at, false) === ZFS_UBERBLOCK_MAGIC) found++;
    }
    return found >= ZFS_MIN_UBERBLOCKS ? { score: 90, type: 'zfs_member', usage: 'filesystem' } : undefined;
  },
};
