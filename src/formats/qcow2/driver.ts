import type { FormatDriver } from '../types.js';
import { probeQcow2 } from './probe.js';
import { openQcow2 } from './reader.js';

export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  description: 'QEMU copy-on-write v2/v3',
  extensions: ['qcow2'],
  capabilities: { read: true, write: false, streamRead: false, streamWrite: false, compression: false, backing: true },
  probe: probeQcow2,
  open: openQcow2,
};
