/**
 * The writers' pure planning and their refusals: the dynamic layout and BAT are computed before
 * any byte is written (and so can be checked alone), blocks are assembled from pieces in one
 * buffer, and misuse is a UsageError, not a corrupt image.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { Bitmap } from '../../src/formats/shared/bitmap.js';
import { BlockAssembler } from '../../src/formats/shared/block-assembler.js';
import { BlockSlots, NO_SLOT } from '../../src/formats/shared/block-slots.js';
import { parseDriverOptions } from '../../src/formats/shared/options.js';
import { formatUuid, parseUuid, randomUuid } from '../../src/formats/shared/uuid.js';
import { vdiDriver } from '../../src/formats/vdi/driver.js';
import { planVdi } from '../../src/formats/vdi/writer.js';
import { vhdDriver } from '../../src/formats/vhd/driver.js';
import { vhdOptions } from '../../src/formats/vhd/options.js';
import { batBytes, planDynamic, slotOffset } from '../../src/formats/vhd/records.js';
import { BufferSink } from '../../src/stream/sink.js';
import { memorySink } from './sparse-source.js';

const MiB = 1024 * 1024;

describe('dynamic VHD plan', () => {
  it("matches qemu's layout: header at 512, BAT at 1536 padded to a sector, blocks after it", () => {
    const p = planDynamic(1073995776, 2 * MiB); // qemu-img create -f vpc 1G
    expect(p).toMatchObject({ entries: 513, headerOffset: 512, tableOffset: 1536, tableBytes: 2560, dataStart: 4096, bitmapSize: 512, blockStride: 2 * MiB + 512 });
    // qemu's 1 GiB image with writes at 0 and 3 MiB: BAT[0] = 8, BAT[1] = 0x1009 (docs/FORMATS.md §4.3).
    const slots = new Uint32Array(p.entries).fill(NO_SLOT);
    slots[0] = 0;
    slots[1] = 1;
    const bat = new DataView(batBytes(p, slots).buffer);
    expect(bat.getUint32(0)).toBe(8);
    expect(bat.getUint32(4)).toBe(0x1009);
    expect(bat.getUint32(8)).toBe(0xffffffff);
    expect(bat.getUint32(p.tableBytes - 4)).toBe(0xffffffff); // padding stays unused
    expect(slotOffset(p, 1)).toBe(4096 + 2 * MiB + 512);
  });
});

describe('block assembly and slots', () => {
  it('passes whole blocks through and assembles pieces, emitting only blocks with data', async () => {
    const got: Array<[number, number[]]> = [];
    const a = new BlockAssembler(8, 30, async (i, d) => void got.push([i, [...d]]));
    await a.write(0, new Uint8Array(8).fill(1)); // whole block 0: passed through
    await a.write(8, new Uint8Array(3).fill(2)); // block 1 in pieces…
    await a.writeZeroes(11, 2);
    await a.write(13, new Uint8Array(3).fill(3));
    await a.writeZeroes(16, 8); // block 2 all zero: never emitted
    await a.write(28, new Uint8Array([4, 5])); // last block, cut by the virtual size
    await a.finish();
    expect(got).toEqual([
      [0, [1, 1, 1, 1, 1, 1, 1, 1]],
      [1, [2, 2, 2, 0, 0, 3, 3, 3]],
      [3, [0, 0, 0, 0, 4, 5, 0, 0]],
    ]);
  });

  it('refuses writes out of order or past the virtual size', async () => {
    const a = new BlockAssembler(8, 30, async () => {});
    await a.write(8, new Uint8Array(8));
    await expect(a.write(0, new Uint8Array(8))).rejects.toBeInstanceOf(UsageError);
    await expect(a.writeZeroes(24, 8)).rejects.toBeInstanceOf(UsageError);
  });

  it('numbers slots on demand or from a plan', () => {
    const d = BlockSlots.onDemand(5);
    expect([d.take(3), d.take(1), d.take(3), d.count]).toEqual([0, 1, 0, 2]);
    const plan = new Bitmap(5);
    plan.set(1);
    plan.set(4);
    const p = BlockSlots.fromPlan(plan);
    expect([p.take(1), p.take(4), p.take(2), p.count]).toEqual([0, 1, undefined, 2]);
  });
});

describe('UUIDs', () => {
  it('prints and parses both byte orders, and makes version-4 UUIDs', () => {
    const text = '12345678-9abc-def0-0102-030405060708';
    for (const order of ['rfc', 'guid'] as const) expect(formatUuid(parseUuid(text, order)!, order)).toBe(text);
    expect([...parseUuid(text, 'guid')!.subarray(0, 4)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    for (const order of ['rfc', 'guid'] as const) expect(formatUuid(randomUuid(order), order)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseUuid('not-a-uuid', 'rfc')).toBeUndefined();
  });
});

describe('writer options and refusals', () => {
  const parse = (o: Record<string, unknown>) => parseDriverOptions(vhdOptions, 'vhd', o);

  it('takes qemu-img’s vpc options, with defaults', () => {
    expect(parse({})).toEqual({ subformat: 'dynamic', force_size: false });
    expect(parse({ subformat: 'fixed', force_size: 'on' })).toEqual({ subformat: 'fixed', force_size: true });
    expect(parse({ block_size: '512k' })).toMatchObject({ block_size: 512 * 1024 });
  });

  it('refuses unknown or contradictory options as usage errors', () => {
    for (const bad of [{ subformat: 'sparse' }, { cluster_size: '64k' }, { block_size: '3k' }, { block_size: '1G' }, { subformat: 'fixed', block_size: '64k' }, { force_size: 'maybe' }]) {
      expect(() => parse(bad), JSON.stringify(bad)).toThrow(UsageError);
    }
    expect(() => parseDriverOptions(vdiDriver.optionsSchema, 'vdi', { static: 'on', preallocation: 'full' })).toThrow(UsageError);
  });

  it('refuses disks beyond 2040 GiB, BATs too large to plan, and pipes without an allocation map', async () => {
    const spec = (virtualSize: number, options: Record<string, unknown> = {}) => ({ virtualSize, options, file: 'x.vhd' });
    await expect(vhdDriver.create!(new BufferSink(), spec(2041 * 1024 * MiB))).rejects.toBeInstanceOf(UsageError);
    await expect(vhdDriver.create!(new BufferSink(), spec(2000 * 1024 * MiB, { block_size: 4096 }))).rejects.toThrow(/BAT entries/);
    await expect(vhdDriver.create!(memorySink(true).sink, spec(8 * MiB))).rejects.toThrow(/allocation map/);
    await expect(vdiDriver.create!(memorySink(true).sink, spec(8 * MiB))).rejects.toThrow(/allocation map/);
  });

  it('refuses data for a block the plan left out when streaming', async () => {
    const empty = async function* () {};
    for (const driver of [vhdDriver, vdiDriver]) {
      const w = await driver.create!(memorySink(true).sink, { virtualSize: 4 * MiB, options: {}, file: 'x', allocation: () => empty() });
      await expect(w.write(2 * MiB, new Uint8Array(2 * MiB).fill(1))).rejects.toThrow(/allocation map said was empty/);
    }
  });

  it('plans VDI as qemu does: header sector, map at 0x200, data after the padded map', () => {
    expect(planVdi(1024 * MiB)).toEqual({ size: 1024 * MiB, blocks: 1024, offBlocks: 512, offData: 512 + 4096 });
    expect(planVdi(1000)).toEqual({ size: 1024, blocks: 1, offBlocks: 512, offData: 1024 });
  });
});
