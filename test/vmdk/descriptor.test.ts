/**
 * The text descriptor: typed parsing (QEMU's and VMware's styles), malformed lines reported with
 * their line number and byte offset, unknown keys kept, and a serializer whose output QEMU's
 * substring-based parser reads back (docs/FORMATS.md §3.2).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { realWorld } from '../helpers/real-world.js';
import { CorruptImageError, GuestkitError, UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { geometryOf, parseDescriptor, qemuGeometry, serializeDescriptor, type Descriptor } from '../../src/formats/vmdk/descriptor.js';

const FILE = { file: 'd.vmdk', base: 0, embedded: false };

const QEMU_FLAT = `# Disk DescriptorFile
version=1
CID=9dc1627
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 204800 FLAT "f-flat.vmdk" 0

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.geometry.cylinders = "12"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.adapterType = "lsilogic"
ddb.toolsVersion = "2147483647"
`;

describe('parsing', () => {
  it('reads what qemu-img writes into typed fields', () => {
    const d = parseDescriptor(QEMU_FLAT, FILE);
    expect(d).toMatchObject({ version: 1, cid: 0x9dc1627, parentCid: 0xffffffff, createType: 'monolithicFlat', extra: {} });
    expect(d.extents).toEqual([{ access: 'RW', sectors: 204800, type: 'FLAT', fileName: 'f-flat.vmdk', offset: 0, line: 8 }]);
    expect(d.ddb['ddb.adapterType']).toBe('lsilogic');
    expect(geometryOf(d)).toEqual({ cylinders: 12, heads: 255, sectors: 63 });
  });

  it("reads VMware's embedded descriptor of the ESXi sample, keeping every key", () => {
    const bytes = readFileSync(realWorld('esxi-ovftool-streamoptimized.vmdk'));
    const text = bytes.subarray(512, 1024).toString('latin1').split('\0')[0];
    const d = parseDescriptor(text, { file: 'esxi', base: 512, embedded: true });
    expect(d.cid).toBe(0xa454774a);
    expect(d.createType).toBe('streamOptimized');
    expect(d.extents).toEqual([{ access: 'RDONLY', sectors: 33554432, type: 'SPARSE', fileName: 'generated-stream.vmdk', line: 8 }]);
    expect(d.ddb['ddb.longContentID']).toBe('f56c691c480fc22c0f8b7effd5dbb1b1');
    expect(d.ddb['ddb.virtualHWVersion']).toBe('8');
  });

  it('takes CRLF lines, spaces around =, comments, unknown header keys and ZERO extents', () => {
    const text = [
      '# comment',
      '  ',
      'version=2',
      'encoding = "windows-1252"',
      'CID = fffffffe',
      'parentCID = 12ab',
      'isNativeSnapshot="no"',
      'createType = "custom"',
      'parentFileNameHint="base disk.vmdk"',
      'RDONLY 100 SPARSE "with space.vmdk"',
      'RW 50 ZERO',
      'NOACCESS 10 VMFS "v.vmdk"',
      'ddb.uuid = "60 00 C2 9a"',
      '',
    ].join('\r\n');
    const d = parseDescriptor(text, FILE);
    expect(d).toMatchObject({ version: 2, encoding: 'windows-1252', cid: 0xfffffffe, parentCid: 0x12ab, createType: 'custom', parentFileNameHint: 'base disk.vmdk' });
    expect(d.extra).toEqual({ isNativeSnapshot: 'no' });
    expect(d.extents.map((e) => [e.access, e.type, e.fileName])).toEqual([
      ['RDONLY', 'SPARSE', 'with space.vmdk'],
      ['RW', 'ZERO', undefined],
      ['NOACCESS', 'VMFS', 'v.vmdk'],
    ]);
    expect(d.ddb).toEqual({ 'ddb.uuid': '60 00 C2 9a' });
  });

  it('an embedded descriptor may leave createType to the header; a descriptor file may not', () => {
    const text = 'version=1\nCID=1\nparentCID=ffffffff\n';
    expect(parseDescriptor(text, { ...FILE, embedded: true }).createType).toBeUndefined();
    expect(() => parseDescriptor(text, FILE)).toThrow(/no createType/);
  });

  const malformed: Array<[string, string, number, RegExp]> = [
    ['a line that is nothing', 'version=1\nCID=1\ncreateType="x"\nhello world\n', 4, /neither a comment/],
    ['an extent line without quotes', 'version=1\nCID=1\ncreateType="x"\nRW 10 FLAT f.vmdk 0\n', 4, /not an extent line/],
    ['a FLAT extent without offset', 'version=1\nCID=1\ncreateType="x"\n\nRW 10 FLAT "f.vmdk"\n', 5, /needs a sector offset/],
    ['a VMFS extent with an offset', 'version=1\nCID=1\ncreateType="x"\nRW 10 VMFS "f.vmdk" 3\n', 4, /takes no offset/],
    ['a ZERO extent with a file', 'version=1\nCID=1\ncreateType="x"\nRW 10 ZERO "f.vmdk"\n', 4, /takes no file name/],
    ['a size that is not a number', 'version=1\nCID=1\ncreateType="x"\nRW ten FLAT "f.vmdk" 0\n', 4, /not a number of sectors/],
    ['a CID that is not hex', 'version=1\nCID=xyz\ncreateType="x"\n', 2, /invalid CID/],
    ['a version out of range', '# c\nversion=9\nCID=1\ncreateType="x"\n', 2, /invalid version/],
    ['an unterminated quote', 'version=1\nCID=1\ncreateType="x\n', 3, /unterminated/],
    ['a bad key', 'version=1\nCID=1\nbad key!="x"\n', 3, /invalid key/],
  ];
  for (const [what, text, line, why] of malformed) {
    it(`reports ${what} with its line number and offset`, () => {
      let err: unknown;
      try {
        parseDescriptor(text, { ...FILE, base: 512 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CorruptImageError);
      const e = err as CorruptImageError;
      expect(e.message).toMatch(why);
      expect(e.field).toBe(`descriptor line ${line}`);
      const lineStart = text.split('\n').slice(0, line - 1).join('\n').length + (line > 1 ? 1 : 0);
      expect(e.offset).toBe(512 + lineStart);
      expect(e.file).toBe('d.vmdk');
    });
  }

  it('an unknown extent type is unsupported, with its line', () => {
    expect(() => parseDescriptor('version=1\nCID=1\ncreateType="x"\nRW 1 FANCY "a"\n', FILE)).toThrow(UnsupportedFeatureError);
  });

  it('arbitrary text only ever yields a descriptor or a GuestkitError', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('version=1', 'CID=1', 'createType="monolithicFlat"', 'RW 8 FLAT "a" 0', 'RW 8 ZERO', 'ddb.x = "y"', 'parentCID=ffffffff'),
      fc.tuple(fc.constantFrom('RW', 'RDONLY', 'NOACCESS'), fc.string({ maxLength: 10 }), fc.constantFrom('FLAT', 'SPARSE', 'ZERO', 'VMFS', 'X'), fc.string({ maxLength: 10 }), fc.string({ maxLength: 5 })).map((p) => p.join(' ')),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), (lines, embedded) => {
        try {
          const d = parseDescriptor(lines.join('\n'), { ...FILE, embedded });
          expect(Number.isInteger(d.cid)).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(GuestkitError);
        }
      }),
      { numRuns: 300, seed: 4 },
    );
  });
});

describe('serializing', () => {
  it("writes QEMU's own line order, so its output equals qemu-img's for the same disk", () => {
    const d = parseDescriptor(QEMU_FLAT, FILE);
    // QEMU prints the CID without zero padding; we pad to 8 digits as VMware does.
    expect(serializeDescriptor(d)).toBe(QEMU_FLAT.replace('CID=9dc1627\n', 'CID=09dc1627\n'));
  });

  it("survives QEMU's substring parser: CID before parentCID, createType and parentFileNameHint followed by =\"", () => {
    const d: Descriptor = {
      version: 1,
      cid: 0xabc,
      parentCid: 0x1234,
      createType: 'monolithicSparse',
      parentFileNameHint: 'base.vmdk',
      extra: { isNativeSnapshot: 'no' },
      extents: [{ access: 'RW', sectors: 8, type: 'SPARSE', fileName: 'c.vmdk', line: 0 }],
      ddb: { 'ddb.adapterType': 'ide', 'ddb.comment': 'has CID and createType words' },
    };
    const text = serializeDescriptor(d);
    expect(text.indexOf('CID')).toBe(text.indexOf('CID=00000abc'));
    expect(text.indexOf('createType')).toBe(text.indexOf('createType="'));
    expect(text.indexOf('parentFileNameHint')).toBe(text.indexOf('parentFileNameHint="'));
    expect(text.indexOf('parentCID')).toBeGreaterThan(text.indexOf('CID='));
  });

  it('refuses what a descriptor cannot carry', () => {
    const base = parseDescriptor(QEMU_FLAT, FILE);
    const withName = (fileName: string) => ({ ...base, extents: [{ ...base.extents[0], fileName }] });
    expect(() => serializeDescriptor(withName('a"b'))).toThrow(UsageError);
    expect(() => serializeDescriptor(withName('a\nb'))).toThrow(UsageError);
    expect(() => serializeDescriptor({ ...base, ddb: { 'not ddb': 'x' } })).toThrow(UsageError);
    expect(() => serializeDescriptor({ ...base, extra: { CID: '1' } })).toThrow(UsageError);
    expect(() => serializeDescriptor({ ...base, createType: 'two words' })).toThrow(UsageError);
  });

  it('round trips any record it accepts', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9 ._-]{1,30}$/);
    const extent = fc.oneof(
      fc.record({ access: fc.constantFrom('RW' as const, 'RDONLY' as const), sectors: fc.nat(1 << 30), type: fc.constant('FLAT' as const), fileName: name, offset: fc.nat(1 << 30) }),
      fc.record({ access: fc.constant('RW' as const), sectors: fc.nat(1 << 30), type: fc.constantFrom('SPARSE' as const, 'VMFS' as const, 'VMFSSPARSE' as const), fileName: name }),
      fc.record({ access: fc.constant('RW' as const), sectors: fc.nat(1 << 30), type: fc.constant('ZERO' as const) }),
    );
    const value = fc.stringMatching(/^[A-Za-z0-9 ._:-]{0,20}$/);
    const record = fc.record({
      version: fc.constantFrom(1, 2, 3),
      cid: fc.nat(0xffffffff),
      parentCid: fc.nat(0xffffffff),
      createType: fc.constantFrom('monolithicSparse', 'monolithicFlat', 'vmfs', 'twoGbMaxExtentFlat', 'streamOptimized'),
      parentFileNameHint: fc.option(name, { nil: undefined }),
      extra: fc.dictionary(fc.stringMatching(/^[a-z][a-zA-Z]{0,10}$/).filter((k) => !['version', 'encoding', 'createType'].includes(k)), value, { maxKeys: 3 }),
      extents: fc.array(extent, { minLength: 1, maxLength: 4 }),
      ddb: fc.dictionary(fc.stringMatching(/^ddb\.[a-z][a-zA-Z.]{0,12}$/), value, { maxKeys: 4 }),
    });
    fc.assert(
      fc.property(record, (r) => {
        const d: Descriptor = { ...r, extents: r.extents.map((e) => ({ ...e, line: 0 })) };
        if (d.parentFileNameHint === undefined) delete d.parentFileNameHint;
        const back = parseDescriptor(serializeDescriptor(d), FILE);
        expect({ ...back, extents: back.extents.map((e) => ({ ...e, line: 0 })) }).toEqual(d);
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it("gives new disks QEMU's geometry: 16 heads for IDE, 255 otherwise, cylinders not capped", () => {
    expect(qemuGeometry(1024 ** 3, 'ide')).toEqual({ cylinders: 2080, heads: 16, sectors: 63 });
    expect(qemuGeometry(100 * 1024 ** 2, 'lsilogic')).toEqual({ cylinders: 12, heads: 255, sectors: 63 });
  });
});
