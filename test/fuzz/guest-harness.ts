/**
 * Fuzzing the guest wing: partition tables, probes and LVM over disks whose metadata regions are
 * mutated (a sparse patch over a real fixture, so a 48 MiB disk costs no copy per case), and the
 * LVM text parser on arbitrary and mutated text. The property, as for the image readers: a result
 * or a GuestkitError — never another exception, a hang or an unbounded allocation.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { GuestkitError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import { identify, PROBES } from '../../src/guest/probe.js';
import { scanLvm } from '../../src/guest/volumes/lvm2/vg.js';
import { parseConfig } from '../../src/guest/volumes/lvm2/config.js';
import { DiskView, RangeView, checkRange, type BlockView } from '../../src/guest/view.js';
import { ALLOCATION_ALLOWANCE, CASE_TIME_LIMIT_MS, withTimeout, type Outcome } from './harness.js';
import { GUEST_FIXTURES } from '../guest/helpers.js';

/** A view of `base` with bytes patched and, optionally, cut short. */
export class PatchedView implements BlockView {
  constructor(
    private readonly base: BlockView,
    private readonly patches: ReadonlyMap<number, number>,
    readonly size: number,
    readonly name = 'fuzz.img',
  ) {}
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const out = await this.base.read(offset, length);
    for (const [at, v] of this.patches) if (at >= offset && at < offset + length) out[at - offset] = v;
    return out;
  }
}

export interface Seed {
  name: string;
  view: BlockView;
  /** Byte ranges holding metadata, where mutations land. */
  hot: [number, number][];
}

/** The fixtures as seeds, with the regions their tables, superblocks and LVM areas occupy. */
export async function guestSeeds(names: string[]): Promise<Seed[]> {
  const out: Seed[] = [];
  for (const name of names) {
    const reader = await openImage(join(GUEST_FIXTURES, `${name}.qcow2`));
    const view = new DiskView(reader, name);
    const hot: [number, number][] = [[0, 72 * 1024], [Math.max(0, view.size - 64 * 1024), view.size]];
    const table = await readPartitionTable(view);
    for (const p of table?.partitions ?? []) hot.push([Math.max(0, p.start - 1024), Math.min(view.size, p.start + 72 * 1024)]);
    out.push({ name, view, hot });
  }
  return out;
}

export const patchArb = (seeds: Seed[]) =>
  fc.record({
    seed: fc.nat(seeds.length - 1),
    edits: fc.array(
      fc.record({ region: fc.nat(64), at: fc.nat(), value: fc.constantFrom(0, 1, 0x05, 0x0f, 0x55, 0x7f, 0x80, 0xaa, 0xee, 0xff), width: fc.constantFrom(1, 4) }),
      { minLength: 1, maxLength: 8 },
    ),
    cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { freq: 5 }),
  });

export function applyPatch(seeds: Seed[], p: { seed: number; edits: { region: number; at: number; value: number; width: number }[]; cut: number | null }): BlockView {
  const s = seeds[p.seed];
  const patches = new Map<number, number>();
  for (const e of p.edits) {
    const [lo, hi] = s.hot[e.region % s.hot.length];
    const at = lo + (e.at % Math.max(1, hi - lo));
    for (let i = 0; i < e.width; i++) patches.set(at + i, e.width === 4 && e.value === 0xff ? 0xff : i === 0 ? e.value : 0);
  }
  const size = p.cut === null ? s.view.size : Math.floor(s.view.size * p.cut);
  return new PatchedView(s.view, patches, size);
}

/** What `guestkit filesystems` does with a disk: table, probes of each partition, LVM, a read of each LV. */
async function useDisk(view: BlockView): Promise<void> {
  const table = await readPartitionTable(view);
  const parts = (table?.partitions ?? []).filter((p) => !p.extended).map((p) => new RangeView(view, p.start, p.size, p.device));
  const candidates = parts.length ? parts : [view];
  for (const c of candidates) await identify(c);
  const lvm = await scanLvm(candidates);
  for (const vg of lvm.vgs) for (const lv of vg.lvs) if (lv.view) await identify(lv.view);
}

async function guarded(what: string, run: () => Promise<void>): Promise<Outcome> {
  const before = process.memoryUsage().arrayBuffers;
  try {
    await withTimeout(run(), CASE_TIME_LIMIT_MS, what);
    return { ok: true };
  } catch (e) {
    if (e instanceof GuestkitError) return { ok: false, error: e };
    throw e;
  } finally {
    const grown = process.memoryUsage().arrayBuffers - before;
    if (grown > ALLOCATION_ALLOWANCE) throw new Error(`${what} allocated ${grown} bytes`);
  }
}

export const exerciseDisk = (view: BlockView): Promise<Outcome> => guarded('guest disk', () => useDisk(view));

export const exerciseProbes = (view: BlockView): Promise<Outcome> =>
  guarded('probes', async () => {
    for (const p of PROBES) await p.probe(view).catch((e) => { if (!(e instanceof GuestkitError)) throw e; });
  });

export const exerciseLvmText = (text: string): Promise<Outcome> =>
  guarded('LVM text', async () => {
    parseConfig(text, 'fuzz');
  });

/** Character-level mutations of metadata text: replace, delete or insert syntax characters. */
export const textMutation = fc.record({ at: fc.nat(), kind: fc.constantFrom('del', 'ins', 'set'), ch: fc.constantFrom('{', '}', '[', ']', '"', '=', ',', '#', '\\', '\n', '9', 'a', '-') });
export function mutateText(text: string, muts: { at: number; kind: string; ch: string }[]): string {
  let t = text;
  for (const m of muts) {
    const i = t.length ? m.at % t.length : 0;
    if (m.kind === 'del') t = t.slice(0, i) + t.slice(i + 1);
    else if (m.kind === 'ins') t = t.slice(0, i) + m.ch + t.slice(i);
    else t = t.slice(0, i) + m.ch + t.slice(i + 1);
  }
  return t;
}
