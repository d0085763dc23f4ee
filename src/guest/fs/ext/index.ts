/** The ext2/3/4 driver: one object literal, one line in the filesystem registry. */
import { GuestFileSystem } from '../filesystem.js';
import type { FsDriver } from '../types.js';
import { ExtVolume } from './volume.js';

export const extDriver: FsDriver = {
  types: ['ext2', 'ext3', 'ext4', 'ext4dev'],
  async mount(view, type) {
    return new GuestFileSystem(await ExtVolume.open(view, type));
  },
};
