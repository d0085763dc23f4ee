/** Detection by content (docs/FORMATS.md §7): magics, QEMU's descriptor rule, the subformat named. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { detectBytes } from '../../src/formats/detect.js';
import { probeVmdk } from '../../src/formats/vmdk/probe.js';

const probe = (text: string | Uint8Array) => {
  const head = typeof text === 'string' ? Buffer.from(text) : text;
  return probeVmdk({ head, tail: new Uint8Array(0), size: head.length });
};

describe('VMDK probe', () => {
  it('names the samples by content, whatever their extension', () => {
    for (const [name, sub] of [
      ['esxi-ovftool-streamoptimized.vmdk', 'streamOptimized'],
      ['workstation-monolithicsparse-10g.vmdk', 'monolithicSparse'],
      ['malicious-huge-l1.vmdk.img', 'monolithicSparse'],
    ]) {
      const head = readFileSync(realWorld(name)).subarray(0, 65536);
      expect(probe(head)).toEqual({ score: 100, subformat: sub });
      expect(detectBytes({ head, tail: new Uint8Array(0), size: undefined }).format).toBe('vmdk');
    }
  });

  it("follows QEMU's descriptor rule: comments and blank lines, then exactly version=1|2|3", () => {
    expect(probe('# Disk DescriptorFile\n\nversion=1\ncreateType="vmfs"\n')).toEqual({ score: 100, subformat: 'vmfs' });
    expect(probe('version=3\r\nCID=1\r\n')).toEqual({ score: 100, subformat: 'descriptor' });
    expect(probe('encoding="UTF-8"\nversion=1\n')).toBeNull();
    expect(probe('version=4\n')).toBeNull();
    expect(probe('version=1')).toBeNull();
    expect(probe(Buffer.from('COWD\x01\0\0\0', 'latin1'))).toEqual({ score: 100, subformat: 'vmfsSparse' });
    expect(probe(new Uint8Array(0))).toBeNull();
  });
});
