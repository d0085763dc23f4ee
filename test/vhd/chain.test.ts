/**
 * Differencing VHD chains built by hand (qemu-img cannot make them): a dynamic base, a
 * differencing middle and a differencing top, with sector bitmaps that let individual sectors
 * through to the parent, read by guestkit and by libvhdi.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfinementError, CorruptImageError, IoError } from '../../src/errors.js';
import type { FormatInfo } from '../../src/formats/types.js';
import { openVhdFile, type DirectOptions } from './direct.js';
import { describeWithTool } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';
import { buildVhd, expectedChain, macAlias, utf16le, utf8, type BuildSpec, type BuiltLocator } from './build.js';
import { PYVHDI, readWithLibvhdi } from './pyvhdi.js';

const BS = 64 * 1024; // not qemu's 2 MiB: block sizes are read from the header
const SIZE = 20 * BS + 3 * 512; // a last block cut by the virtual size

/** Base (dynamic), middle and top (differencing) layers, written into `dir`. */
function makeChain(dir: string, midLocators: BuiltLocator[]) {
  const base: BuildSpec = {
    type: 'dynamic',
    size: SIZE,
    blockSize: BS,
    blocks: [0, 1, 2, 5, 9, 20].map((index) => ({ index, data: pseudoRandom(BS, 100 + index) })),
  };
  const b = buildVhd(base);
  writeFileSync(join(dir, 'base.vhd'), b.bytes);
  const mid: BuildSpec = {
    type: 'differencing',
    size: SIZE,
    blockSize: BS,
    blocks: [
      // Sectors 3-7 of every 8 present (runs that start inside a bitmap byte): the rest comes from the base.
      { index: 1, data: pseudoRandom(BS, 201), present: (s) => s % 8 >= 3 },
      // A run in the middle of a block the base does not have.
      { index: 3, data: pseudoRandom(BS, 203), present: (s) => s >= 10 && s < 40 },
      // Fully present over a base block.
      { index: 5, data: pseudoRandom(BS, 205) },
      // Nothing present: the block is allocated but every sector reads from the base.
      { index: 9, data: pseudoRandom(BS, 209), present: () => false },
    ],
    parent: { uuid: b.uuid, unicodeName: 'C:\\VMs\\base.vhd', locators: midLocators },
  };
  const m = buildVhd(mid);
  writeFileSync(join(dir, 'mid.vhd'), m.bytes);
  const top: BuildSpec = {
    type: 'differencing',
    size: SIZE,
    blockSize: BS,
    blocks: [
      { index: 1, data: pseudoRandom(BS, 301), present: (s) => s % 16 >= 13 },
      { index: 3, data: pseudoRandom(BS, 303), present: (s) => s < 16 || s > 100 },
      { index: 20, data: pseudoRandom(BS, 320), present: (s) => s >= 5 && s < 8 },
      { index: 12, data: pseudoRandom(BS, 312) },
    ],
    parent: { uuid: m.uuid, unicodeName: 'mid.vhd', locators: [{ code: 'W2ru', data: utf16le('.\\mid.vhd') }] },
  };
  writeFileSync(join(dir, 'top.vhd'), buildVhd(top).bytes);
  return { base, mid, top, expected: expectedChain([top, mid, base], SIZE) };
}

async function readAll(path: string, opts: DirectOptions = {}): Promise<{ data: Uint8Array; info: FormatInfo }> {
  const r = await openVhdFile(path, opts);
  try {
    return { data: await r.read(0, r.virtualSize), info: r.info() };
  } finally {
    await r.close();
  }
}

describeWithTool('python3-libvhdi (pyvhdi)', PYVHDI, 'differencing VHD chain of depth two, against libvhdi', () => {
  const dir = workDir('vhd-chain');
  // The middle layer names its parent only by an absolute Windows path: found by file name next to it.
  const chain = makeChain(dir, [{ code: 'W2ku', data: utf16le('C:\\Users\\someone\\VMs\\base.vhd') }]);

  it('reads every sector as libvhdi does, bitmaps included', async () => {
    const ours = await readAll(join(dir, 'top.vhd'));
    const lib = readWithLibvhdi([join(dir, 'top.vhd'), join(dir, 'mid.vhd'), join(dir, 'base.vhd')]);
    expect(lib.size).toBe(SIZE);
    expect(Buffer.from(ours.data).equals(lib.data)).toBe(true);
    expect(Buffer.from(ours.data).equals(Buffer.from(chain.expected))).toBe(true);
  });

  it('reads the middle layer alone as libvhdi does', async () => {
    const ours = await readAll(join(dir, 'mid.vhd'));
    const lib = readWithLibvhdi([join(dir, 'mid.vhd'), join(dir, 'base.vhd')]);
    expect(Buffer.from(ours.data).equals(lib.data)).toBe(true);
  });

  it('maps the chain: data at depth 0, 1 and 2, and zeros where no layer has data', async () => {
    const r = await openVhdFile(join(dir, 'top.vhd'));
    const depths = new Set<number>();
    let covered = 0;
    for await (const e of r.extents()) {
      expect(e.offset).toBe(covered);
      covered += e.length;
      if (e.kind === 'data') depths.add(e.depth);
    }
    await r.close();
    expect(covered).toBe(SIZE);
    expect([...depths].sort()).toEqual([0, 1, 2]);
  });

  it('describes the parent in info', async () => {
    const { info } = await readAll(join(dir, 'top.vhd'));
    expect(info.subformat).toBe('differencing');
    expect(info.backingFile).toBe('.\\mid.vhd');
    expect(info.backingFileFull).toBe(join(dir, 'mid.vhd'));
    expect(info.backingFormat).toBe('vpc');
    expect(info.clusterSize).toBe(BS);
    const fs = info.formatSpecific!;
    expect(fs['parent-locators']).toEqual([
      { platform: 'W2ru', path: '.\\mid.vhd' },
      { platform: 'name', path: 'mid.vhd' },
    ]);
  });
});

describe('parent locators', () => {
  const root = workDir('vhd-locators');
  let n = 0;
  /** A base and a child in a fresh folder; the child's locators are made by `locators`. */
  function pair(locators: (dir: string) => BuildSpec['parent'], opts: { baseDir?: string } = {}) {
    const dir = join(root, `case${n++}`);
    mkdirSync(dir);
    const baseDir = opts.baseDir ? join(dir, opts.baseDir) : dir;
    mkdirSync(baseDir, { recursive: true });
    const base: BuildSpec = { type: 'dynamic', size: 4 * BS, blockSize: BS, blocks: [{ index: 0, data: pseudoRandom(BS, 7) }, { index: 2, data: pseudoRandom(BS, 8) }] };
    const b = buildVhd(base);
    writeFileSync(join(baseDir, 'base.vhd'), b.bytes);
    const parent = locators(dir)!;
    const child: BuildSpec = {
      type: 'differencing',
      size: 4 * BS,
      blockSize: BS,
      blocks: [{ index: 2, data: pseudoRandom(BS, 9), present: (s) => s < 4 }],
      parent: { ...parent, uuid: parent.uuid.length ? parent.uuid : b.uuid },
    };
    writeFileSync(join(dir, 'child.vhd'), buildVhd(child).bytes);
    return { dir, path: join(dir, 'child.vhd'), expected: expectedChain([child, base], 4 * BS) };
  }
  const none = new Uint8Array(0);

  it('follows a MacX file URL to a file inside the folder', async () => {
    const c = pair((dir) => ({ uuid: none, unicodeName: '', locators: [{ code: 'MacX', data: utf8(`file://localhost${dir}/base.vhd`) }] }));
    expect(Buffer.from((await readAll(c.path)).data).equals(Buffer.from(c.expected))).toBe(true);
  });

  it('follows a Mac alias record by its file name', async () => {
    const c = pair(() => ({ uuid: none, unicodeName: '', locators: [{ code: 'Mac ', data: macAlias('base.vhd') }] }));
    expect(Buffer.from((await readAll(c.path)).data).equals(Buffer.from(c.expected))).toBe(true);
  });

  it('falls back to the parent unicode name', async () => {
    const c = pair(() => ({ uuid: none, unicodeName: 'base.vhd', locators: [] }));
    expect(Buffer.from((await readAll(c.path)).data).equals(Buffer.from(c.expected))).toBe(true);
  });

  it('prefers the relative W2ru locator to a stale absolute one', async () => {
    const c = pair(() => ({
      uuid: none,
      unicodeName: '',
      locators: [
        { code: 'W2ku', data: utf16le('D:\\old\\place\\gone.vhd') },
        { code: 'W2ru', data: utf16le('.\\sub\\base.vhd') },
      ],
    }), { baseDir: 'sub' });
    const r = await readAll(c.path);
    expect(Buffer.from(r.data).equals(Buffer.from(c.expected))).toBe(true);
    expect(r.info.backingFile).toBe('.\\sub\\base.vhd');
  });

  it('refuses a parent outside the child folder unless allowed', async () => {
    const c = pair(() => ({ uuid: none, unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('..\\elsewhere\\base.vhd') }] }), { baseDir: '../elsewhere' });
    await expect(openVhdFile(c.path)).rejects.toBeInstanceOf(ConfinementError);
    const r = await readAll(c.path, { allowOutside: true });
    expect(Buffer.from(r.data).equals(Buffer.from(c.expected))).toBe(true);
  });

  it('refuses a parent whose unique id is not the one recorded', async () => {
    const c = pair(() => ({ uuid: new Uint8Array(16).fill(0x42), unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('base.vhd') }] }));
    const err = await openVhdFile(c.path).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err.field).toBe('parentUuid');
    expect(err.message).toMatch(/42424242-4242-4242-4242-424242424242/);
  });

  it('reports a missing parent with the paths it tried', async () => {
    const c = pair(() => ({ uuid: none, unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('missing.vhd') }] }));
    const err = await openVhdFile(c.path).catch((e) => e);
    expect(err).toBeInstanceOf(IoError);
    expect(err.message).toContain(join(c.dir, 'missing.vhd'));
  });

  it('opens without the parent when asked, reading its sectors as zeros', async () => {
    const c = pair(() => ({ uuid: none, unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('missing.vhd') }] }));
    const r = await openVhdFile(c.path, { openBacking: false });
    const data = await r.read(0, r.virtualSize);
    expect(r.info().backingFile).toBe('missing.vhd');
    await r.close();
    const want = new Uint8Array(4 * BS);
    want.set(pseudoRandom(BS, 9).subarray(0, 4 * 512), 2 * BS);
    expect(Buffer.from(data).equals(Buffer.from(want))).toBe(true);
  });
});

describe('sector bitmaps beyond what libvhdi reads right', () => {
  const dir = workDir('vhd-bitmaps');

  it('follows single sectors and alternating bits, most significant bit first', async () => {
    const base: BuildSpec = { type: 'dynamic', size: 3 * BS, blockSize: BS, blocks: [0, 1, 2].map((index) => ({ index, data: pseudoRandom(BS, 40 + index) })) };
    const b = buildVhd(base);
    writeFileSync(join(dir, 'base.vhd'), b.bytes);
    const child: BuildSpec = {
      type: 'differencing',
      size: 3 * BS,
      blockSize: BS,
      blocks: [
        { index: 0, data: pseudoRandom(BS, 50), present: (s) => s % 2 === 0 },
        { index: 1, data: pseudoRandom(BS, 51), present: (s) => s === 1 || s === 2 || s === 127 },
        { index: 2, data: pseudoRandom(BS, 52), present: (s) => s % 3 === 0 || s === 64 },
      ],
      parent: { uuid: b.uuid, unicodeName: 'base.vhd', locators: [] },
    };
    writeFileSync(join(dir, 'child.vhd'), buildVhd(child).bytes);
    const want = expectedChain([child, base], 3 * BS);
    const r = await openVhdFile(join(dir, 'child.vhd'));
    // Whole, and in odd-sized pieces that start and end inside sectors.
    expect(Buffer.from(await r.read(0, r.virtualSize)).equals(Buffer.from(want))).toBe(true);
    for (const [off, len] of [[1, 1000], [511, 2], [BS - 700, 1500], [BS + 512 + 3, 300], [2 * BS + 1535, 4097]]) {
      expect(Buffer.from(await r.read(off, len)).equals(Buffer.from(want.subarray(off, off + len)))).toBe(true);
    }
    // Sector 0 of block 1 comes from the base (depth 1), sectors 1-2 from the child.
    const extents = [];
    for await (const e of r.extents(BS, BS + 4 * 512)) extents.push([e.offset - BS, e.length, e.kind, e.depth]);
    expect(extents).toEqual([
      [0, 512, 'data', 1],
      [512, 1024, 'data', 0],
      [1536, 512, 'data', 1],
    ]);
    await r.close();
  });
});
