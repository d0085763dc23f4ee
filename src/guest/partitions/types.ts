/**
 * Partition type names, as util-linux's fdisk/sfdisk print them (libfdisk/src/dos_parttypes.h and
 * gpt.c), so a user comparing with `sfdisk -l` reads the same words.
 */

/** MBR system ids. */
export const MBR_TYPES: Readonly<Record<number, string>> = {
  0x00: 'Empty', 0x01: 'FAT12', 0x04: 'FAT16 <32M', 0x05: 'Extended', 0x06: 'FAT16', 0x07: 'HPFS/NTFS/exFAT',
  0x0b: 'W95 FAT32', 0x0c: 'W95 FAT32 (LBA)', 0x0e: 'W95 FAT16 (LBA)', 0x0f: "W95 Ext'd (LBA)", 0x11: 'Hidden FAT12',
  0x12: 'Compaq diagnostics', 0x14: 'Hidden FAT16 <32M', 0x16: 'Hidden FAT16', 0x17: 'Hidden HPFS/NTFS', 0x1b: 'Hidden W95 FAT32',
  0x1c: 'Hidden W95 FAT32 (LBA)', 0x1e: 'Hidden W95 FAT16 (LBA)', 0x27: 'Hidden NTFS WinRE', 0x42: 'SFS', 0x82: 'Linux swap / Solaris',
  0x83: 'Linux', 0x85: 'Linux extended', 0x86: 'NTFS volume set', 0x87: 'NTFS volume set', 0x8e: 'Linux LVM', 0xa5: 'FreeBSD',
  0xa6: 'OpenBSD', 0xa8: 'Darwin UFS', 0xa9: 'NetBSD', 0xab: 'Darwin boot', 0xaf: 'HFS / HFS+', 0xbf: 'Solaris',
  0xda: 'Non-FS data', 0xee: 'GPT', 0xef: 'EFI (FAT-12/16/32)', 0xfb: 'VMware VMFS', 0xfc: 'VMware VMKCORE',
  0xfd: 'Linux raid autodetect',
};

/** Ids of extended (container) partitions whose EBR chain holds the logical partitions. */
export const MBR_EXTENDED = new Set([0x05, 0x0f, 0x85]);
export const MBR_GPT_PROTECTIVE = 0xee;
/** Windows marks the partition of a dynamic disk (LDM) with 0x42. */
export const MBR_LDM = 0x42;

export const GPT_TYPE = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  linuxFs: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  linuxLvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
  linuxSwap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  linuxRaid: 'A19D880F-05FC-4D3B-A006-743F0F84911E',
  msData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  msReserved: 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
  winRecovery: 'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
  ldmMetadata: '5808C8AA-7E8F-42E0-85D2-E1E90434CFB3',
  ldmData: 'AF9B60A0-1431-4F62-BC68-3311714A69AD',
} as const;

/** GPT partition type GUIDs (upper case, as sfdisk prints them). */
export const GPT_TYPES: Readonly<Record<string, string>> = {
  [GPT_TYPE.esp]: 'EFI System',
  [GPT_TYPE.biosBoot]: 'BIOS boot',
  [GPT_TYPE.linuxFs]: 'Linux filesystem',
  [GPT_TYPE.linuxLvm]: 'Linux LVM',
  [GPT_TYPE.linuxSwap]: 'Linux swap',
  [GPT_TYPE.linuxRaid]: 'Linux RAID',
  '8DA63339-0007-60C0-C436-083AC8230908': 'Linux reserved',
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'Linux home',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'Linux root (x86-64)',
  '44479540-F297-41B2-9AF7-D131D5F0458A': 'Linux root (x86)',
  'B921B045-1DF0-41C3-AF44-4C6F280D3FAE': 'Linux root (ARM-64)',
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'Linux extended boot',
  'CA7D7CCB-63ED-4C53-861C-1742536059CC': 'Linux LUKS',
  [GPT_TYPE.msData]: 'Microsoft basic data',
  [GPT_TYPE.msReserved]: 'Microsoft reserved',
  [GPT_TYPE.winRecovery]: 'Windows recovery environment',
  [GPT_TYPE.ldmMetadata]: 'Microsoft LDM metadata',
  [GPT_TYPE.ldmData]: 'Microsoft LDM data',
  'E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D': 'Microsoft Storage Spaces',
  '48465300-0000-11AA-AA11-00306543ECAC': 'Apple HFS/HFS+',
  '7C3457EF-0000-11AA-AA11-00306543ECAC': 'Apple APFS',
  '6A898CC3-1DD2-11B2-99A6-080020736631': 'Solaris /usr & Apple ZFS',
  '516E7CBA-6ECF-11D6-8FF8-00022D09712B': 'FreeBSD ZFS',
  '516E7CB6-6ECF-11D6-8FF8-00022D09712B': 'FreeBSD UFS',
  '024DEE41-33E7-11D3-9D69-0008C781F39F': 'MBR partition scheme',
};

export const mbrTypeName = (id: number): string => MBR_TYPES[id] ?? 'unknown';
export const gptTypeName = (guid: string): string => GPT_TYPES[guid.toUpperCase()] ?? 'unknown';

/** GPT attribute bits with names (UEFI 2.10 §5.3.3, table 5-8); bits 48-63 belong to the type and print as GUID:n. */
const ATTRIBUTE_NAMES: Readonly<Record<number, string>> = { 0: 'RequiredPartition', 1: 'NoBlockIOProtocol', 2: 'LegacyBIOSBootable' };

/** The attribute word as sfdisk prints it ("RequiredPartition GUID:60,63"). */
export function gptAttributeText(attrs: bigint): string {
  const words: string[] = [];
  const typeBits: number[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (((attrs >> BigInt(bit)) & 1n) === 0n) continue;
    if (bit >= 48) typeBits.push(bit);
    else words.push(ATTRIBUTE_NAMES[bit] ?? `${bit}`);
  }
  if (typeBits.length) words.push(`GUID:${typeBits.join(',')}`);
  return words.join(' ');
}
