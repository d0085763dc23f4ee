/** What a partition table parser returns, whatever the scheme. */
export interface Partition {
  /** Linux's number: MBR primaries 1-4 by slot, logical partitions from 5; GPT by entry index + 1. */
  number: number;
  /** Device name: /dev/sda1. */
  device: string;
  /** Byte offset and length inside the disk. */
  start: number;
  size: number;
  /** MBR system id (MBR tables only). */
  mbrType?: number;
  /** GPT type GUID, upper case (GPT tables only). */
  gptType?: string;
  /** Human name of the type, as sfdisk prints it. */
  typeName: string;
  /** blkid's PARTUUID: the GPT unique GUID, or `<disk signature>-<nn>` on MBR. */
  partuuid: string;
  /** GPT partition name (PARTLABEL). */
  name?: string;
  /** GPT attribute word, and as sfdisk prints it. */
  attributes?: bigint;
  attributeText?: string;
  bootable?: boolean;
  /** An MBR extended partition: a container of logical partitions, not a filesystem. */
  extended?: boolean;
  logical?: boolean;
}

export interface PartitionTable {
  scheme: 'mbr' | 'gpt';
  /** Logical sector size the table is laid out in. */
  sectorSize: number;
  /** MBR disk signature as "0x1234abcd", or the GPT disk GUID (upper case). */
  diskId: string;
  partitions: Partition[];
  /** GPT: an MBR besides the protective entry (hybrid), whose other entries are reported here. */
  hybridMbr?: Partition[];
  firstUsableLba?: number;
  lastUsableLba?: number;
  /** Non-fatal observations: the backup GPT header was used, … */
  warnings: string[];
}

/** Refuses overlapping partitions: two filesystems over the same bytes means a damaged table. */
export function overlapping(parts: readonly Partition[]): [Partition, Partition] | undefined {
  const sorted = [...parts].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].start + sorted[i - 1].size) return [sorted[i - 1], sorted[i]];
  }
  return undefined;
}
