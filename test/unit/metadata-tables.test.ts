/**
 * Metadata tables bounded only by a (sparse) file's size — a VMDK grain directory of 32 Mi entries,
 * a VDI block map of 256 Mi entries in 512-byte blocks, a VHD BAT of 160 Mi entries — are held in
 * windows, not whole: opening, mapping and checking such images keeps memory flat, answers a run of
 * empty entries in one extent, and lets the event loop turn during the walk (so Ctrl-C is prompt).
 * Images are stated on a SparseBytes source: only their few written bytes exist.
 */
import { describe, expect, it } from 'vitest';
import { CorruptImageError } from '../../src/errors.js';
import { rootContext } from '../../src/formats/open.js';
import { byName } from '../../src/formats/registry.js';
import { MAX_CHECK_MESSAGES, MESSAGES_OMITTED } from '../../src/formats/shared/check-log.js';
import { U32Table, WINDOW_ENTRIES, isUniform } from '../../src/formats/shared/u32-table.js';
import type { Extent, ImageReader } from '../../src/formats/types.js';
import { fields, SparseBytes } from '../helpers/sparse-bytes.js';
import { footer } from '../vhd/build.js';

const Mi = 1024 * 1024;
const ctx = (file: string) => rootContext(file, undefined, { openBacking: false });

/** Runs `work` while counting event-loop turns (setImmediate callbacks) and ArrayBuffer growth. */
async function observed<T>(work: () => Promise<T>): Promise<{ value: T; turns: number; grown: number }> {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
  const startTurns = turns;
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    return { value, turns: turns - startTurns, grown: peak - before };
  } finally {
    on = false;
    clearInterval(sampler);
  }
}

async function allExtents(r: ImageReader): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of r.extents()) out.push(e);
  return out;
}

/** A VDI of `n` blocks of 512 bytes, its map at 512 (as the hostile-2 reproduction builds it). */
function hugeVdi(n: number, mapFill: number, blocksAllocated: number): SparseBytes {
  const h = fields(512, [
    [0x40, 0xbeda107f],
    [0x44, 0x10001],
    [0x48, 384],
    [0x4c, 1],
    [0x154, 512],
    [0x158, 512 + n * 4],
    [0x168, 512],
    [0x170, (n * 512) % 2 ** 32],
    [0x174, Math.floor((n * 512) / 2 ** 32)],
    [0x178, 512],
    [0x180, n],
    [0x184, blocksAllocated],
  ]);
  h.set(new TextEncoder().encode('<<< QEMU VM Virtual Disk Image >>>\n'));
  return new SparseBytes(512 + n * 4 + 1024, 'huge.vdi').write(0, h).fill(512, 512 + n * 4, mapFill);
}

/** A dynamic VHD of `n` blocks of 512 bytes, its BAT at 1536. */
function hugeVhd(n: number, batFill: number): SparseBytes {
  const size = n * 512;
  const f = footer({ type: 'dynamic', size, blockSize: 512, blocks: [] }, new Uint8Array(16).fill(7));
  const d = new Uint8Array(1024);
  const dv = new DataView(d.buffer);
  d.set(new TextEncoder().encode('cxsparse'));
  dv.setBigUint64(8, 0xffff_ffff_ffff_ffffn);
  dv.setBigUint64(16, 1536n);
  dv.setUint32(24, 0x10000);
  dv.setUint32(28, n);
  dv.setUint32(32, 512);
  let sum = 0;
  for (const b of d) sum += b;
  dv.setUint32(36, ~sum >>> 0);
  const end = 1536 + n * 4 + 1024;
  return new SparseBytes(end + 512, 'huge.vhd').write(0, f).write(512, d).fill(1536, 1536 + n * 4, batFill).write(end, f);
}

/** The reproduction's VMDK: grains of one sector, 512-entry tables, so a 32 Mi-entry directory (and its redundant copy). */
function hugeVmdk(): SparseBytes {
  const gdEntries = 32 * Mi;
  const cap = gdEntries * 512;
  const gdSec = 1024;
  const rgdSec = gdSec + gdEntries / 128 + 8;
  const h = new Uint8Array(512);
  const dv = new DataView(h.buffer);
  h.set(new TextEncoder().encode('KDMV'));
  dv.setUint32(4, 1, true);
  dv.setUint32(8, 3, true);
  dv.setBigUint64(12, BigInt(cap), true);
  dv.setBigUint64(20, 1n, true);
  dv.setUint32(44, 512, true);
  dv.setBigUint64(48, BigInt(rgdSec), true);
  dv.setBigUint64(56, BigInt(gdSec), true);
  dv.setBigUint64(64, 128n, true);
  h.set([0x0a, 0x20, 0x0d, 0x0a], 73);
  const grain = new Uint8Array(512).fill(0xab);
  return new SparseBytes((rgdSec + gdEntries / 128 + 8) * 512, 'huge.vmdk')
    .write(0, h)
    .write(27 * 512, fields(4, [[0, 128]]))
    .write(128 * 512, grain)
    .write(gdSec * 512, fields(4, [[0, 27]]))
    .write(rgdSec * 512, fields(4, [[0, 27]]));
}

describe('U32Table: a file table read in windows', () => {
  it('answers entries, runs and sequences across windows, holding a bounded number of them', async () => {
    const n = 64 * Mi; // 256 MiB of table
    const src = new SparseBytes(n * 4, 't.bin').fill(0, n * 4, 0xff).write(4 * (40 * Mi), fields(12, [[0, 5], [4, 6], [8, 9]]));
    const t = new U32Table({ source: src, offset: 0, entries: n, littleEndian: true, field: 'table' });
    const { value, grown } = await observed(async () => {
      const firstData = await t.runEnd(0, n, (e) => e === 0xffff_ffff);
      const seq = await t.sequenceEnd(firstData + 1, n, 6);
      // Touch many windows: the cache keeps only a few.
      for (let i = 0; i < n; i += WINDOW_ENTRIES) await t.at(i);
      return { firstData, seq, at: await t.at(40 * Mi + 2) };
    });
    expect(value).toEqual({ firstData: 40 * Mi, seq: 40 * Mi + 2, at: 9 });
    // Coarse (garbage not yet collected counts too); the whole table would be 256 MiB.
    expect(grown).toBeLessThan(96 * Mi);
  });

  it('reads big-endian tables in host order, and refuses a table past the end of the file', async () => {
    const src = new SparseBytes(16).write(4, fields(4, [[0, 0x01020304, true]]));
    expect(await new U32Table({ source: src, offset: 0, entries: 4, littleEndian: false, field: 'bat' }).at(1)).toBe(0x01020304);
    expect(() => new U32Table({ source: src, offset: 8, entries: 4, littleEndian: true, field: 'bat' })).toThrow(/bat at 8 \(16 bytes\) lies past the end/);
  });

  it('tells uniform chunks by one compare', () => {
    expect(isUniform(new Uint32Array(1000).fill(7))).toBe(true);
    const a = new Uint32Array(1000).fill(7);
    a[999] = 8;
    expect(isUniform(a)).toBe(false);
    expect(isUniform(new Uint32Array(0))).toBe(true);
  });

  it('lets the event loop turn during a walk of a huge table whose reads settle at once', async () => {
    const n = 128 * Mi;
    const t = new U32Table({ source: new SparseBytes(n * 4), offset: 0, entries: n, littleEndian: true, field: 'table' });
    const { value, turns } = await observed(async () => {
      // A visitor that looks at every entry, as the open-time validations do: a walk of some length.
      let seen = 0;
      await t.walk((_, e) => {
        for (let i = 0; i < e.length; i++) if (e[i] === 0) seen++;
      });
      return seen;
    });
    expect(value).toBe(n);
    expect(turns).toBeGreaterThan(0);
  });
});

describe('VDI: a 256 Mi-entry block map of 512-byte blocks', () => {
  const n = 256 * Mi;

  it('opens and maps an empty one in bounded memory, as one extent, while the event loop turns', async () => {
    const { value, grown, turns } = await observed(async () => {
      const r = await byName('vdi').open!(hugeVdi(n, 0xff, 0), ctx('huge.vdi'));
      const info = r.info();
      const extents = await allExtents(r);
      await r.close();
      return { info, extents };
    });
    expect(value.extents).toEqual([{ offset: 0, length: n * 512, kind: 'zero', depth: 0 }]);
    expect(value.info.formatSpecific).toMatchObject({ 'blocks-in-image': n, 'blocks-zero': 0 });
    // Coarse; the whole map would be 1 GiB.
    expect(grown).toBeLessThan(128 * Mi);
    expect(turns).toBeGreaterThan(0);
  });

  it('refuses to read a map whose entries share blocks (more than the data area holds); check reports it', async () => {
    const e = await byName('vdi').open!(hugeVdi(n, 0, 1), ctx('huge.vdi')).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(CorruptImageError);
    expect(e).toMatchObject({ field: 'block map', offset: 512 });
    expect(String(e)).toMatch(/268435456 allocated entries, but the data area holds at most 2 blocks: entries share blocks/);
  });

  it('checks a map whose every entry names block 0: exact counts, capped messages, bounded memory', async () => {
    const { value, grown } = await observed(() => byName('vdi').check!(hugeVdi(n, 0, 1), ctx('huge.vdi')));
    // n - 1 entries share block 0, and the header counts 1 allocated block of n.
    expect(value.corruptions).toBe(n);
    expect(value.messages[0]).toBe('ERROR: block index 0 also used by 1 (first used by 0)');
    expect(value.messages[MAX_CHECK_MESSAGES]).toBe(MESSAGES_OMITTED);
    expect(value.messages.at(-1)).toBe(`ERROR: allocated blocks mismatch, is ${n}, should be 1`);
    expect(value.messages).toHaveLength(MAX_CHECK_MESSAGES + 2);
    expect(grown).toBeLessThan(128 * Mi);
  });
});

describe('VHD: a 160 Mi-entry BAT of 512-byte blocks', () => {
  const n = 160 * Mi;

  it('opens an empty one in bounded memory and maps it as one extent', async () => {
    const { value, grown } = await observed(async () => {
      const r = await byName('vhd').open!(hugeVhd(n, 0xff), ctx('huge.vhd'));
      const extents = await allExtents(r);
      const info = r.info();
      await r.close();
      return { extents, info };
    });
    expect(value.extents).toEqual([{ offset: 0, length: n * 512, kind: 'zero', depth: 0 }]);
    expect(value.info.formatSpecific).toMatchObject({ 'allocated-blocks': 0, 'max-table-entries': n });
    expect(grown).toBeLessThan(128 * Mi);
  });

  it('refuses a BAT of zeros (every block at sector 0: more blocks than the file holds) without holding it', async () => {
    const { value, grown } = await observed(() => byName('vhd').open!(hugeVhd(n, 0), ctx('huge.vhd')).then(
      () => undefined,
      (e: unknown) => e,
    ));
    expect(value).toBeInstanceOf(CorruptImageError);
    expect(value).toMatchObject({ field: 'BAT', offset: 1536 });
    expect(String(value)).toMatch(/names 167772160 allocated blocks, but the \d+-byte file holds at most \d+ blocks/);
    expect(grown).toBeLessThan(128 * Mi);
  });
});

describe('VMDK: a 32 Mi-entry grain directory (and its redundant copy)', () => {
  it('opens, maps and checks in bounded memory', async () => {
    const { value, grown } = await observed(async () => {
      const src = hugeVmdk();
      const r = await byName('vmdk').open!(src, ctx('huge.vmdk'));
      const extents = await allExtents(r);
      const data = await r.read(0, 512);
      await r.close();
      const check = await byName('vmdk').check!(hugeVmdk(), ctx('huge.vmdk'));
      return { extents, data, check };
    });
    const size = 32 * Mi * 512 * 512;
    expect(value.extents).toEqual([
      { offset: 0, length: 512, kind: 'data', depth: 0, hostOffset: 128 * 512 },
      // A hole with nothing beneath reads as zeros; qemu-img calls a VMDK hole not present.
      { offset: 512, length: size - 512, kind: 'zero', depth: 0, present: false },
    ]);
    expect(value.data.every((b) => b === 0xab)).toBe(true);
    expect(value.check).toMatchObject({ corruptions: 0, checkErrors: 0 });
    expect(grown).toBeLessThan(128 * Mi);
  });
});
