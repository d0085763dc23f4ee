/** Volume managers: LVM2 is opened; the others are recognised by src/guest/probe.ts and reported. */
export { scanLvm, type LvmScan, type PhysicalVolume, type VolumeGroup, type LogicalVolume } from './lvm2/vg.js';
export { parseConfig, type ConfigSection, type ConfigValue } from './lvm2/config.js';

/** Probe types that are containers we recognise but do not open, with what a user should know. */
export const NOT_OPENED: Readonly<Record<string, string>> = {
  crypto_LUKS: 'LUKS encrypted volume (not opened: no key handling)',
  BitLocker: 'BitLocker encrypted volume (not opened)',
  linux_raid_member: 'Linux MD RAID member (not assembled)',
  zfs_member: 'ZFS pool member (not opened)',
};
