/** The FAT12/16/32 (VFAT) driver. */
import { GuestFileSystem } from '../filesystem.js';
import type { FsDriver } from '../types.js';
import { FatVolume } from './volume.js';

export const fatDriver: FsDriver = {
  types: ['vfat', 'msdos'],
  async mount(view) {
    return new GuestFileSystem(await FatVolume.open(view));
  },
};
