import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CorruptImageError, GuestkitError, LimitExceededError } from '../../src/errors.js';
import { allocationUnits, MAX_OVF_DEPTH, parseOvf } from '../../src/ova/ovf.js';
import { parseManifest } from '../../src/ova/manifest.js';
import { listTar, checkMemberName } from '../../src/ova/tar.js';
import { BufferSource } from '../../src/stream/source.js';

const envelope = (ns: string, body: string, prefix = 'ovf') =>
  `<?xml version="1.0"?><Envelope xmlns="${ns}" xmlns:${prefix}="${ns}" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vbox="http://www.virtualbox.org/ovf/machine">${body}</Envelope>`;

describe('OVF descriptor model', () => {
  it('knows the 0.9, 1.0 and 2.0 namespaces and refuses others', () => {
    expect(parseOvf(envelope('http://www.vmware.com/schema/ovf/1/envelope', ''), 'x').version).toBe('0.9');
    expect(parseOvf(envelope('http://schemas.dmtf.org/ovf/envelope/1', ''), 'x').version).toBe('1.0');
    expect(parseOvf(envelope('http://schemas.dmtf.org/ovf/envelope/2', ''), 'x').version).toBe('2.0');
    expect(() => parseOvf(envelope('urn:nope', ''), 'x')).toThrow(/no known OVF namespace/);
  });

  it('capacity units: byte * 2^30, byte * 1024, named units; unknown ones are refused', () => {
    expect(allocationUnits('byte * 2^30', 'f', 'c')).toBe(2 ** 30);
    expect(allocationUnits('byte*2^20', 'f', 'c')).toBe(2 ** 20);
    expect(allocationUnits('byte * 1024', 'f', 'c')).toBe(1024);
    expect(allocationUnits('MegaBytes', 'f', 'c')).toBe(2 ** 20);
    expect(() => allocationUnits('furlongs', 'f', 'c')).toThrow(CorruptImageError);
    const m = parseOvf(
      envelope('http://schemas.dmtf.org/ovf/envelope/1', '<References><File ovf:href="d.vmdk" ovf:id="f" ovf:compression="gzip" ovf:chunkSize="1000"/></References><DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f" ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>'),
      'x',
    );
    expect(m.disks[0]).toMatchObject({ capacity: 8 * 2 ** 30, format: 'vmdk', subformat: 'streamOptimized' });
    expect(m.files[0]).toMatchObject({ compression: 'gzip', chunkSize: 1000 });
    expect(() => parseOvf(envelope('http://schemas.dmtf.org/ovf/envelope/1', '<DiskSection><Disk ovf:diskId="d" ovf:capacity="9007199254740991" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection>'), 'x')).toThrow(/too large/);
  });

  it('VirtualSystemCollection: every system listed; VirtualBox EFI firmware', () => {
    const vs = (id: string, fw: string) =>
      `<VirtualSystem ovf:id="${id}"><VirtualHardwareSection><Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>4</rasd:VirtualQuantity></Item></VirtualHardwareSection><vbox:Machine><Hardware><Firmware type="${fw}"/></Hardware></vbox:Machine></VirtualSystem>`;
    const m = parseOvf(envelope('http://schemas.dmtf.org/ovf/envelope/1', `<VirtualSystemCollection ovf:id="app">${vs('a', 'EFI')}${vs('b', 'BIOS')}</VirtualSystemCollection>`), 'x');
    expect(m.collection).toEqual({ id: 'app', systems: ['a', 'b'] });
    expect(m.systems.map((s) => [s.id, s.cpus, s.firmware])).toEqual([['a', 4, 'efi'], ['b', 4, 'bios']]);
  });

  it('hostile descriptors: DOCTYPE/entities, depth, malformed XML give typed errors', () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">&lol2;</Envelope>`;
    expect(() => parseOvf(laughs, 'x')).toThrow(/DOCTYPE/);
    const deep = envelope('http://schemas.dmtf.org/ovf/envelope/1', '<a>'.repeat(MAX_OVF_DEPTH + 1) + '</a>'.repeat(MAX_OVF_DEPTH + 1));
    expect(() => parseOvf(deep, 'x')).toThrow(LimitExceededError);
    expect(() => parseOvf('<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><a></b></Envelope>', 'x')).toThrow(CorruptImageError);
    expect(() => parseOvf('not xml at all', 'x')).toThrow(GuestkitError);
  });

  it('fuzz: mutated descriptors give a model or a GuestkitError', () => {
    const base = envelope(
      'http://schemas.dmtf.org/ovf/envelope/1',
      '<References><File ovf:href="d.vmdk" ovf:id="f"/></References><DiskSection><Disk ovf:diskId="d1" ovf:fileRef="f" ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection><VirtualSystem ovf:id="v"><VirtualHardwareSection><Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item></VirtualHardwareSection></VirtualSystem>',
    );
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.nat(40), fc.string({ maxLength: 60 }), (at, cut, ins) => {
        const xml = base.slice(0, at) + ins + base.slice(at + cut);
        try {
          parseOvf(xml, 'x');
        } catch (e) {
          expect(e).toBeInstanceOf(GuestkitError);
        }
      }),
      { numRuns: 500, seed: 20261208 },
    );
  });
});

describe('manifest', () => {
  it('reads both spellings and refuses a bad line or digest length', () => {
    expect(parseManifest(`SHA1(a.ovf)= ${'a'.repeat(40)}\nSHA256 (b.vmdk) = ${'B'.repeat(64)}\r\n`, 'm')).toEqual([
      { algorithm: 'sha1', file: 'a.ovf', digest: 'a'.repeat(40) },
      { algorithm: 'sha256', file: 'b.vmdk', digest: 'b'.repeat(64) },
    ]);
    expect(() => parseManifest('MD5(a)= 00', 'm')).toThrow(CorruptImageError);
    expect(() => parseManifest(`SHA512(a)= ${'0'.repeat(64)}`, 'm')).toThrow(/128|64 hex digits/);
  });
});

describe('tar walker', () => {
  it('refuses absolute and ../ names', () => {
    for (const n of ['/etc/passwd', '../x', 'a/../../x', 'C:\\x', '']) expect(() => checkMemberName(n, 't', 0)).toThrow(CorruptImageError);
    expect(checkMemberName('./a.ovf', 't', 0)).toBe('a.ovf');
  });

  it('fuzz: mutated tar headers give a listing or a GuestkitError, without hanging', async () => {
    const { readFileSync } = await import('node:fs');
    const tar = readFileSync(new URL('../../fixtures/ova/longname.ova', import.meta.url)).subarray(0, 8192);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(2047), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (muts) => {
        const b = new Uint8Array(tar);
        for (const [at, v] of muts) b[at] = v;
        try {
          await listTar(new BufferSource(b, 't'));
        } catch (e) {
          expect(e).toBeInstanceOf(GuestkitError);
        }
      }),
      { numRuns: 300, seed: 20261208 },
    );
  });
});
