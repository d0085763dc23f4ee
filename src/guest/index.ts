/** The guest wing's public API: what is inside a machine's disks. */
export { openGuest, type Guest, type GuestDevice, type GuestPartition, type GuestFilesystem, type GuestInput } from './guest.js';
export { identify, blkidKeys, PROBES, type Identification, type Probe, type ProbeHit } from './probe.js';
export { readPartitionTable, MBR_TYPES, GPT_TYPES, mbrTypeName, gptTypeName, type Partition, type PartitionTable } from './partitions/index.js';
export { scanLvm, parseConfig, type LvmScan, type PhysicalVolume, type VolumeGroup, type LogicalVolume } from './volumes/index.js';
export { DiskView, RangeView, BufferView, type BlockView } from './view.js';
export { deviceName } from './devices.js';
export { filesystemRows, type FilesystemRow, type RowSelection } from './rows.js';
export { mount, mountView, parseMountSpec, GuestPathError, type FileSystem, type Stat, type DirEntry } from './fs/index.js';
