/** exFAT and NTFS, as libblkid's superblocks/exfat.c and ntfs.c identify them. */
import { dv, isPowerOfTwo, readAt, rtrim, startsWith, utf16 } from './bytes.js';
import type { Probe, ProbeHit } from './types.js';

const serialText = (b: Uint8Array): string => {
  const h = (i: number) => b[i].toString(16).toUpperCase().padStart(2, '0');
  return `${h(3)}${h(2)}-${h(1)}${h(0)}`;
};

/** Directory entries of exFAT's root searched for the label: blkid reads the chain; the label is always near the start. */
const EXFAT_LABEL_SEARCH = 64 * 1024;
const EXFAT_ENTRY_LABEL = 0x83;

export const exfatProbe: Probe = {
  name: 'exfat',
  async probe(view) {
    const bs = await readAt(view, 0, 512);
    if (!bs || !startsWith(bs, 3, 'EXFAT   ')) return undefined;
    const d = dv(bs);
    const sectorShift = bs[108];
    const clusterShift = bs[109];
    if (sectorShift < 9 || sectorShift > 12 || sectorShift + clusterShift > 25) return undefined;
    const sectorSize = 2 ** sectorShift;
    const clusterSize = 2 ** (sectorShift + clusterShift);
    const heap = d.getUint32(88, true) * sectorSize;
    const rootCluster = d.getUint32(96, true);
    const hit: ProbeHit = {
      score: 100,
      type: 'exfat',
      usage: 'filesystem',
      uuid: serialText(bs.subarray(100, 104)),
      version: `${bs[105]}.${bs[104]}`,
      blockSize: sectorSize,
      size: Number(d.getBigUint64(72, true)) * sectorSize,
    };
    if (rootCluster >= 2) {
      const dir = await readAt(view, heap + (rootCluster - 2) * clusterSize, Math.min(clusterSize, EXFAT_LABEL_SEARCH));
      for (let at = 0; dir && at + 32 <= dir.length; at += 32) {
        if (dir[at] === 0) break;
        if (dir[at] !== EXFAT_ENTRY_LABEL) continue;
        const n = Math.min(dir[at + 1], 11);
        const label = utf16(dir.subarray(at + 2, at + 2 + n * 2));
        if (label) hit.label = label;
        break;
      }
    }
    return hit;
  },
};

const NTFS_ATTR_VOLUME_NAME = 0x60;
const NTFS_ATTR_END = 0xffffffff;
/** MFT records are 1 KiB (4 KiB on 4Kn disks); above 64 KiB the header is garbage. */
const MAX_MFT_RECORD = 64 * 1024;

/** Undoes NTFS's update sequence (each 512-byte stride ends with the sequence number); false when it does not match. */
function applyFixups(rec: Uint8Array): boolean {
  const d = dv(rec);
  const usaOfs = d.getUint16(4, true);
  const usaCount = d.getUint16(6, true);
  if (usaCount === 0 || usaOfs + usaCount * 2 > rec.length || (usaCount - 1) * 512 > rec.length) return false;
  const seq = d.getUint16(usaOfs, true);
  for (let i = 1; i < usaCount; i++) {
    const end = i * 512 - 2;
    if (d.getUint16(end, true) !== seq) return false;
    d.setUint16(end, d.getUint16(usaOfs + i * 2, true), true);
  }
  return true;
}

export const ntfsProbe: Probe = {
  name: 'ntfs',
  async probe(view) {
    const bs = await readAt(view, 0, 512);
    if (!bs || !startsWith(bs, 3, 'NTFS    ')) return undefined;
    const d = dv(bs);
    const sectorSize = d.getUint16(11, true);
    let spc = bs[13];
    // Clusters above 64 KiB are stored as a negative shift (Windows 10 1709+).
    if (spc > 0x80) spc = 2 ** (256 - spc);
    if (!isPowerOfTwo(sectorSize) || sectorSize < 256 || sectorSize > 4096 || !isPowerOfTwo(spc)) return undefined;
    const clusterSize = sectorSize * spc;
    const cpr = d.getInt8(0x40);
    const recordSize = cpr > 0 ? cpr * clusterSize : 2 ** -cpr;
    if (!isPowerOfTwo(recordSize) || recordSize < sectorSize || recordSize > MAX_MFT_RECORD) return undefined;
    const serial = d.getBigUint64(0x48, true);
    const hit: ProbeHit = {
      score: 100,
      type: 'ntfs',
      usage: 'filesystem',
      uuid: serial.toString(16).toUpperCase().padStart(16, '0'),
      blockSize: sectorSize,
      size: Number(d.getBigUint64(0x28, true)) * sectorSize,
    };
    // $Volume is MFT record 3; blkid, like us, assumes the MFT's first records are contiguous.
    const mft = Number(d.getBigUint64(0x30, true)) * clusterSize;
    const rec = Number.isSafeInteger(mft) ? await readAt(view, mft + 3 * recordSize, recordSize) : undefined;
    if (rec && startsWith(rec, 0, 'FILE') && applyFixups(rec)) {
      const r = dv(rec);
      let at = r.getUint16(0x14, true);
      while (at + 24 <= rec.length) {
        const type = r.getUint32(at, true);
        const len = r.getUint32(at + 4, true);
        if (type === NTFS_ATTR_END || len < 24 || at + len > rec.length) break;
        if (type === NTFS_ATTR_VOLUME_NAME && rec[at + 8] === 0) {
          const vlen = r.getUint32(at + 0x10, true);
          const voff = r.getUint16(at + 0x14, true);
          if (voff + vlen <= len) {
            const label = rtrim(utf16(rec.subarray(at + voff, at + voff + vlen)));
            if (label) hit.label = label;
          }
          break;
        }
        at += len;
      }
    }
    return hit;
  },
};
