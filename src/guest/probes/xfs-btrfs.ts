/** XFS (superblock at 0, big-endian) and btrfs (superblock at 64 KiB), as blkid reads them. */
import { cString, dv, isPowerOfTwo, readAt, startsWith, uuidText } from './bytes.js';
import type { Probe } from './types.js';

export const xfsProbe: Probe = {
  name: 'xfs',
  async probe(view) {
    const sb = await readAt(view, 0, 512);
    if (!sb || !startsWith(sb, 0, 'XFSB')) return undefined;
    const d = dv(sb);
    const blockSize = d.getUint32(4, false);
    const sectSize = d.getUint16(102, false);
    // xfs_verify_sb's basic sanity: power-of-two block and sector sizes in the ranges mkfs allows.
    if (!isPowerOfTwo(blockSize) || blockSize < 512 || blockSize > 65536) return undefined;
    if (!isPowerOfTwo(sectSize) || sectSize < 512 || sectSize > 32768) return undefined;
    const dblocks = Number(d.getBigUint64(8, false));
    const label = cString(sb.subarray(108, 120));
    return {
      score: 100,
      type: 'xfs',
      usage: 'filesystem',
      uuid: uuidText(sb.subarray(32, 48)),
      ...(label ? { label } : {}),
      // blkid reports the sector size as BLOCK_SIZE for xfs.
      blockSize: sectSize,
      size: dblocks * blockSize,
    };
  },
};

const BTRFS_SB = 64 * 1024;

export const btrfsProbe: Probe = {
  name: 'btrfs',
  async probe(view) {
    const sb = await readAt(view, BTRFS_SB, 4096);
    if (!sb || !startsWith(sb, 0x40, '_BHRfS_M')) return undefined;
    const d = dv(sb);
    const sectorSize = d.getUint32(0x90, true);
    if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 65536) return undefined;
    const label = cString(sb.subarray(0x12b, 0x12b + 256));
    return {
      score: 100,
      type: 'btrfs',
      usage: 'filesystem',
      uuid: uuidText(sb.subarray(0x20, 0x30)),
      ...(label ? { label } : {}),
      blockSize: sectorSize,
      size: Number(d.getBigUint64(0x70, true)),
      // dev_item (at 0xc9) holds this device's uuid 66 bytes in.
      extra: { UUID_SUB: uuidText(sb.subarray(0xc9 + 66, 0xc9 + 82)) },
    };
  },
};
