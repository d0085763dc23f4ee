/**
 * Fuzzing the filesystem readers (ext2/3/4, FAT): the fixtures of fixtures/guest/fs with bytes
 * patched where their metadata lies — superblock, descriptors, inodes, extent and indirect blocks,
 * directories, FATs — found by recording what a clean walk reads. The property, as everywhere: a
 * result or a GuestkitError; never another exception, a hang or an unbounded allocation.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { GuestkitError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { mountView } from '../../src/guest/fs/registry.js';
import type { FileSystem } from '../../src/guest/fs/types.js';
import { DiskView, checkRange, type BlockView } from '../../src/guest/view.js';
import { FS_FIXTURES } from '../guest/fs/oracles.js';
import { ALLOCATION_ALLOWANCE, CASE_TIME_LIMIT_MS, withTimeout, type Outcome } from './harness.js';
import { PatchedView } from './guest-harness.js';

export const FS_SEEDS = ['ext4', 'ext4-1k', 'ext4-nocsum', 'ext3', 'ext2', 'ext4-metabg', 'ext4-bigalloc', 'fat12', 'fat16', 'fat32'];
/** Reads up to this size are metadata (blocks, sectors, FAT pieces); bigger ones are file data. */
const METADATA_READ = 65536;
/** A walk of a mutated tree stops after this many nodes: the property is about errors, not coverage of giant trees. */
const MAX_NODES = 400;
const MAX_DEPTH = 48;

/** Remembers the ranges a clean walk reads, to aim mutations at metadata. */
class RecordingView implements BlockView {
  readonly ranges: [number, number][] = [];
  constructor(private readonly base: BlockView) {}
  get name(): string {
    return this.base.name;
  }
  get size(): number {
    return this.base.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length <= METADATA_READ) this.ranges.push([offset, offset + length]);
    return this.base.read(offset, length);
  }
}

export interface FsSeed {
  name: string;
  /** blkid's TYPE of the clean seed: mutated copies are mounted as that, so the driver sees them even when identification would not. */
  type: string;
  view: BlockView;
  hot: [number, number][];
  close(): Promise<void>;
}

/** Everything a user of the FileSystem does: walk, stat, readlink, read the head and tail of each file. */
export async function useFs(fs: FileSystem): Promise<void> {
  let nodes = 0;
  const visit = async (path: string, depth: number): Promise<void> => {
    if (++nodes > MAX_NODES || depth > MAX_DEPTH) return;
    const st = await fs.lstat(path);
    if (st.type === 'symlink') {
      await fs.readlink(path);
      await fs.stat(path).catch((e) => {
        if (!(e instanceof GuestkitError)) throw e;
      });
    } else if (st.type === 'file') {
      await fs.read(path, 0, 65536);
      if (st.size > 65536) await fs.read(path, Math.max(0, st.size - 65536), 65536);
    } else if (st.type === 'directory') {
      for (const e of await fs.readdir(path)) {
        await visit(path === '/' ? `/${e.name}` : `${path}/${e.name}`, depth + 1).catch((err) => {
          if (!(err instanceof GuestkitError)) throw err;
        });
      }
    }
  };
  await visit('/', 0);
}

export async function fsSeeds(names = FS_SEEDS): Promise<FsSeed[]> {
  const out: FsSeed[] = [];
  for (const name of names) {
    const reader = await openImage(join(FS_FIXTURES, `${name}.qcow2`));
    const view = new DiskView(reader, name);
    const rec = new RecordingView(view);
    const fs = await mountView(rec);
    await useFs(fs);
    // Merge the recorded reads into a few hundred regions at most.
    const sorted = rec.ranges.sort((a, b) => a[0] - b[0]);
    const hot: [number, number][] = [];
    for (const r of sorted) {
      const last = hot[hot.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else hot.push([r[0], r[1]]);
    }
    out.push({ name, type: fs.type, view, hot, close: () => reader.close() });
  }
  return out;
}

export const fsPatchArb = (seeds: FsSeed[]) =>
  fc.record({
    seed: fc.nat(seeds.length - 1),
    edits: fc.array(
      fc.record({
        region: fc.nat(),
        at: fc.nat(),
        value: fc.constantFrom(0, 1, 2, 0x0a, 0x0f, 0x3f, 0x40, 0x7f, 0x80, 0xe5, 0xf3, 0xf8, 0xfe, 0xff),
        width: fc.constantFrom(1, 2, 4),
      }),
      { minLength: 1, maxLength: 8 },
    ),
    // Mostly whole devices: a cut device mostly tests the first read, not the metadata.
    cut: fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 1 }),
  });

export function applyFsPatch(seeds: FsSeed[], p: { seed: number; edits: { region: number; at: number; value: number; width: number }[]; cut: number | null }): { view: BlockView; type: string } {
  const s = seeds[p.seed];
  const patches = new Map<number, number>();
  for (const e of p.edits) {
    const [lo, hi] = s.hot[e.region % s.hot.length];
    const at = lo + (e.at % Math.max(1, hi - lo));
    for (let i = 0; i < e.width; i++) patches.set(at + i, e.value === 0xff || i === 0 ? e.value : 0);
  }
  const size = p.cut === null ? s.view.size : Math.floor(s.view.size * p.cut);
  return { view: new PatchedView(s.view, patches, size, s.name), type: s.type };
}

export async function exerciseFs(view: BlockView, type?: string): Promise<Outcome> {
  const before = process.memoryUsage().arrayBuffers;
  try {
    await withTimeout(
      (async () => {
        await useFs(await mountView(view, type));
      })(),
      CASE_TIME_LIMIT_MS,
      'filesystem walk',
    );
    return { ok: true };
  } catch (e) {
    if (e instanceof GuestkitError) return { ok: false, error: e };
    throw e;
  } finally {
    const grown = process.memoryUsage().arrayBuffers - before;
    if (grown > ALLOCATION_ALLOWANCE) throw new Error(`filesystem walk allocated ${grown} bytes`);
  }
}
