import { describe, expect, it } from 'vitest';
import { realWorld, realWorldNames } from '../helpers/real-world.js';
import fc from 'fast-check';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { detectBytes } from '../../src/formats/detect.js';
import { detectFormat } from '../../src/api/info.js';
import { vhdChecksum } from '../../src/formats/vhd/probe.js';

const input = (head: Uint8Array, tail = new Uint8Array(0), size = head.length) => ({ head, tail, size });

describe('detection from header bytes', () => {
  it('never throws and always names a format, whatever the bytes and split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 1024 }), (head, tail) => {
        const d = detectBytes(input(head, tail, head.length + tail.length));
        expect(typeof d.format).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on near-magic prefixes', () => {
    const magics = ['QFI\xfb', 'KDMV', 'COWD', 'conectix', 'vhdxfile', '# Disk DescriptorFile\nversion=1\n'];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 600 }), (m, rest) => {
        const head = new Uint8Array(m.length + rest.length);
        for (let i = 0; i < m.length; i++) head[i] = m.charCodeAt(i);
        head.set(rest, m.length);
        expect(() => detectBytes(input(head, head.subarray(Math.max(0, head.length - 512))))).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });

  it('treats empty input as raw', () => {
    expect(detectBytes(input(new Uint8Array(0))).format).toBe('raw');
  });

  it('recognises qcow2 versions and legacy qcow', () => {
    const h = new Uint8Array(512);
    h.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    expect(detectBytes(input(h))).toMatchObject({ format: 'qcow2', subformat: 'v3' });
    h[7] = 1;
    expect(detectBytes(input(h)).format).toBe('qcow');
  });

  it('recognises a VMDK descriptor only when version= is the first real line', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(detectBytes(input(enc('# Disk DescriptorFile\n\nversion=1\ncreateType="monolithicFlat"\n')))).toMatchObject({
      format: 'vmdk',
      subformat: 'monolithicFlat',
    });
    expect(detectBytes(input(enc('encoding="UTF-8"\nversion=1\n'))).format).toBe('raw');
    expect(detectBytes(input(enc('version=4\n'))).format).toBe('raw');
  });

  it('finds a fixed VHD by its footer at the end, only with a valid checksum', () => {
    const footer = new Uint8Array(512);
    footer.set(new TextEncoder().encode('conectix'));
    new DataView(footer.buffer).setUint32(60, 2);
    new DataView(footer.buffer).setUint32(64, vhdChecksum(footer));
    const head = new Uint8Array(512);
    expect(detectBytes(input(head, footer, 4096))).toMatchObject({ format: 'vhd', subformat: 'fixed' });
    footer[100] ^= 1;
    expect(detectBytes(input(head, footer, 4096)).format).toBe('raw');
  });

  const expected: Record<string, [string, string?]> = {
    'esxi-ovftool-streamoptimized.vmdk': ['vmdk', 'streamOptimized'],
    'ext2-fs.qcow2': ['qcow2', 'v3'],
    'ext2-fs.vmdk': ['vmdk', 'monolithicSparse'],
    'grub-mbr.raw': ['raw'],
    'hyperv-win10-fixed.vhdx': ['vhdx', 'fixed'],
    'hyperv-ws2016-dynamic-swap.vhdx': ['vhdx', 'dynamic'],
    // A tar whose first member is an OVF descriptor (src/ova/).
    'virtualbox-export-stub.ova': ['ova'],
    'hyperv2012r2-dynamic.vhd': ['vhd', 'dynamic'],
    'malicious-65536-snapshots.qcow2': ['qcow2'],
    'malicious-huge-l1.vmdk.img': ['vmdk'],
    'malicious-qcow1-152tib.img': ['qcow', 'v1'],
    'ovftool-streamoptimized-10g.vmdk': ['vmdk', 'streamOptimized'],
    'qcow2-v2-compressed.qcow2': ['qcow2', 'v2'],
    'qemu-afl5-fuzzed.vhd': ['vhd'],
    'qemu-afl9-fuzzed.vmdk': ['vmdk'],
    'qemu-compressed-512b-clusters.qcow2': ['qcow2', 'v3'],
    'sun-virtualbox-3-dynamic.vdi': ['vdi', 'dynamic'],
    'virtualbox-4.0.8-dynamic.vdi': ['vdi', 'dynamic'],
    'virtualpc-dynamic.vhd': ['vhd', 'dynamic'],
    'workstation-monolithicsparse-10g.vmdk': ['vmdk', 'monolithicSparse'],
  };

  it('names every real-world sample in fixtures/real-world by content', async () => {
    const files = realWorldNames();
    expect(files).toEqual(Object.keys(expected).sort());
    for (const f of files) {
      const [format, sub] = expected[f];
      const d = await detectFormat(realWorld(f));
      expect(d.format, f).toBe(format);
      if (sub) expect(d.subformat, f).toBe(sub);
    }
  });
});
