/** What a probe finds in a view, in blkid's terms (`blkid -p -o export`). */
export interface Identification {
  /** blkid's TYPE: ext4, vfat, swap, LVM2_member, crypto_LUKS, … */
  type: string;
  /** blkid's USAGE. */
  usage: 'filesystem' | 'raid' | 'crypto' | 'other';
  uuid?: string;
  label?: string;
  version?: string;
  /** blkid's BLOCK_SIZE (what each type reports: the fs block, or the sector size for xfs/vfat/ntfs). */
  blockSize?: number;
  /** Size of the filesystem in bytes, as its superblock says. */
  size?: number;
  /** Other blkid keys we report (SEC_TYPE, LABEL_FATBOOT, UUID_SUB, LOGUUID, EXT_JOURNAL). */
  extra?: Record<string, string>;
}

export interface ProbeHit extends Identification {
  /** 100 for a checked magic and consistent fields; lower for weaker evidence. */
  score: number;
}

/** One entry of the probe registry: looks at a view and says whether it holds its type; never throws on "not mine". */
export interface Probe {
  name: string;
  probe(view: import('../view.js').BlockView): Promise<ProbeHit | undefined>;
}
