/**
 * The qcow2 variants qemu-img/qemu-io make (versions, cluster sizes, refcount widths, compression
 * types, extended L2, backing chains, snapshots, zero clusters…): every one the reader must read
 * exactly as qemu-img does, and that the writer must convert cleanly.
 */
import { join } from 'node:path';
import { qemuImg, qemuIo } from '../helpers/oracle.js';
import { qemuImage } from './helpers.js';

export interface Variant {
  name: string;
  /** Builds the image (the top of a chain) from the 8 MiB source raw; returns its path. */
  make(dir: string, source: string): string;
}

const M = 1024 * 1024;

export const VARIANTS: Variant[] = [
  {
    name: 'compat=0.10 (version 2)',
    make: (dir, src) => qemuImage(dir, 'v2.qcow2', src, 'compat=0.10', ['write -z 1M 64k', 'discard 2M 64k', 'write -c -P 0x77 6M 64k']),
  },
  {
    name: 'compat=1.1 with zero, discarded and compressed clusters',
    make: (dir, src) =>
      qemuImage(dir, 'v3.qcow2', src, 'compat=1.1', ['write -z 512k 128k', 'write -z 4M 64k', 'discard 2M 64k', 'write -c -P 0x77 6M 128k']),
  },
  { name: 'cluster_size=512', make: (dir, src) => qemuImage(dir, 'c512.qcow2', src, 'cluster_size=512', ['write -z 4k 2k', 'write -c -P 0x33 6M 4k']) },
  { name: 'cluster_size=4k', make: (dir, src) => qemuImage(dir, 'c4k.qcow2', src, 'cluster_size=4k', ['write -z 8k 8k', 'discard 64k 4k']) },
  { name: 'cluster_size=64k', make: (dir, src) => qemuImage(dir, 'c64k.qcow2', src, 'cluster_size=64k', ['write -P 0x12 7M 4k']) },
  { name: 'cluster_size=2M', make: (dir, src) => qemuImage(dir, 'c2m.qcow2', src, 'cluster_size=2M', ['write -z 2M 2M', 'write -P 0x21 6M 4k']) },
  {
    name: 'extended_l2=on (subclusters)',
    make: (dir, src) =>
      qemuImage(dir, 'xl2.qcow2', src, 'extended_l2=on', [
        `write -P 0xab ${6 * M} 4k`,
        `write -z ${6 * M + 8192} 8k`,
        `write -z ${64 * 1024} 2k`,
        `discard ${2 * M} 2k`,
        `write -c -P 0x66 ${6 * M + 256 * 1024} 64k`,
      ]),
  },
  { name: 'extended_l2=on,cluster_size=16k', make: (dir, src) => qemuImage(dir, 'xl2-16k.qcow2', src, 'extended_l2=on,cluster_size=16k', ['write -z 1k 1k']) },
  { name: 'zlib compressed (-c)', make: (dir, src) => qemuImage(dir, 'zlib.qcow2', src, '', ['write -P 0x44 3M 64k'], true) },
  { name: 'zstd compressed (-c)', make: (dir, src) => qemuImage(dir, 'zstd.qcow2', src, 'compression_type=zstd', ['write -c -P 0x45 3M 64k'], true) },
  { name: 'lazy_refcounts=on', make: (dir, src) => qemuImage(dir, 'lazy.qcow2', src, 'lazy_refcounts=on', ['write -P 0x46 3M 64k', 'write -z 0 64k']) },
  { name: 'refcount_bits=1', make: (dir, src) => qemuImage(dir, 'r1.qcow2', src, 'refcount_bits=1', ['write -P 0x47 3M 64k']) },
  { name: 'refcount_bits=64', make: (dir, src) => qemuImage(dir, 'r64.qcow2', src, 'refcount_bits=64', ['write -c -P 0x48 3M 64k']) },
  { name: 'preallocation=metadata', make: (dir, src) => qemuImage(dir, 'prealloc.qcow2', src, 'preallocation=metadata', []) },
  {
    name: 'three-deep backing chain with overlapping writes (16, 24, 32 MiB)',
    make: (dir) => {
      const base = join(dir, 'chain-base.qcow2');
      const mid = join(dir, 'chain-mid.qcow2');
      const top = join(dir, 'chain-top.qcow2');
      qemuImg('create', '-q', '-f', 'qcow2', base, '16M');
      qemuIo('qcow2', base, 'write -P 0x01 0 4M', 'write -P 0x02 8M 1M', 'write -c -P 0x03 12M 128k', 'write -P 0x0f 15M 1M');
      qemuImg('create', '-q', '-f', 'qcow2', '-b', 'chain-base.qcow2', '-F', 'qcow2', mid, '24M');
      qemuIo('qcow2', mid, 'write -P 0x11 1M 2M', 'write -z 8M 256k', 'write -P 0x12 16252928 1M', 'write -P 0x13 20M 64k');
      qemuImg('create', '-q', '-f', 'qcow2', '-b', 'chain-mid.qcow2', '-F', 'qcow2', top, '32M');
      qemuIo('qcow2', top, 'write -P 0x21 1536k 1M', 'write -P 0x22 8519680 64k', 'discard 2M 64k', 'write -z 15M 64k', 'write -P 0x23 30M 64k');
      return top;
    },
  },
  {
    name: 'internal snapshot (reads the active state)',
    make: (dir, src) => {
      const p = qemuImage(dir, 'snap.qcow2', src, '', ['write -P 0x31 0 64k']);
      qemuImg('snapshot', '-c', 'first', p);
      qemuIo('qcow2', p, 'write -P 0x32 0 128k', 'write -P 0x33 5M 64k');
      qemuImg('snapshot', '-c', 'second', p);
      qemuIo('qcow2', p, 'discard 2M 1M');
      return p;
    },
  },
  {
    name: 'virtual size not a multiple of the cluster size',
    make: (dir) => {
      const p = join(dir, 'odd.qcow2');
      qemuImg('create', '-q', '-f', 'qcow2', p, '3072512');
      qemuIo('qcow2', p, 'write -P 0x44 3006464 66048', 'write -P 0x45 0 1000');
      return p;
    },
  },
  {
    name: 'empty image',
    make: (dir) => {
      const p = join(dir, 'empty.qcow2');
      qemuImg('create', '-q', '-f', 'qcow2', p, '16M');
      return p;
    },
  },
];
