/**
 * "The output may not be a file of the source's chain", and "a chain may not loop", hold for every
 * name a file has: a hard link is the same file as its target, which paths (even realpath) cannot
 * see. Each command that checks the rule is tried with a hard link and a symlink.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { resize } from '../../src/api/resize.js';
import { CorruptImageError, UsageError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { fileIdentity, fileKey, sameFile } from '../../src/stream/file-identity.js';
import { qcow2Naming, vmdkNaming } from '../helpers/named-files.js';
import { workDir } from '../helpers/work.js';

const root = workDir('same-file');
const MiB = 1 << 20;
let n = 0;
const digest = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** base.raw (4 MiB of 0x11) and top.qcow2 over it with its first MiB 0x22, plus `alias.raw` (hard link) and `sym.raw` (symlink) to the base. */
async function chain(): Promise<{ dir: string; base: string; top: string; hard: string; soft: string }> {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir);
  const base = join(dir, 'base.raw');
  writeFileSync(base, Buffer.alloc(4 * MiB, 0x11));
  const content = Buffer.alloc(4 * MiB, 0x11);
  content.fill(0x22, 0, MiB);
  writeFileSync(join(dir, 'content.raw'), content);
  const top = join(dir, 'top.qcow2');
  await convert({ source: join(dir, 'content.raw'), output: top, backingFile: 'base.raw', backingFormat: 'raw' });
  linkSync(base, join(dir, 'alias.raw'));
  symlinkSync('base.raw', join(dir, 'sym.raw'));
  return { dir, base, top, hard: join(dir, 'alias.raw'), soft: join(dir, 'sym.raw') };
}

async function refusedAsChainFile(p: Promise<unknown>): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect((err as Error).message).toMatch(/is the source image or part of its backing chain/);
}

describe('file identity', () => {
  it('a hard link, a symlink and a symlinked folder name the same file; other files do not', () => {
    const dir = join(root, 'ids');
    mkdirSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'a'), 'a');
    writeFileSync(join(dir, 'b'), 'a');
    linkSync(join(dir, 'a'), join(dir, 'hard'));
    symlinkSync('a', join(dir, 'soft'));
    symlinkSync('out', join(dir, 'outlink'));
    expect(sameFile(join(dir, 'a'), join(dir, 'hard'))).toBe(true);
    expect(sameFile(join(dir, 'soft'), join(dir, 'hard'))).toBe(true);
    expect(sameFile(join(dir, 'a'), join(dir, 'b'))).toBe(false);
    // Names not created yet: the same through a symlinked folder, different by name.
    expect(sameFile(join(dir, 'out/x.raw'), join(dir, 'outlink/x.raw'))).toBe(true);
    expect(sameFile(join(dir, 'out/new/x.raw'), join(dir, 'outlink/new/x.raw'))).toBe(true);
    expect(sameFile(join(dir, 'out/x.raw'), join(dir, 'outlink/y.raw'))).toBe(false);
    expect(fileKey(join(dir, 'out/../a'))).toBe(fileKey(join(dir, 'hard')));
    expect(fileIdentity(join(dir, 'missing'))).toBeUndefined();
    expect(fileIdentity(join(dir, 'hard'))).toEqual(fileIdentity(join(dir, 'a')));
  });
});

describe('the output may not be a file of the source chain, under any name', () => {
  for (const via of ['hard', 'soft'] as const) {
    it(`convert -n onto a ${via} link of the backing file is refused and the backing file is untouched`, async () => {
      const c = await chain();
      const before = digest(c.base);
      await refusedAsChainFile(convert({ source: c.top, output: c[via], format: 'raw', existing: true }));
      expect(digest(c.base)).toBe(before);
    });

    it(`convert -n onto a ${via} link of the source itself is refused`, async () => {
      const c = await chain();
      const other = join(c.dir, 'other.qcow2');
      if (via === 'hard') linkSync(c.top, other);
      else symlinkSync('top.qcow2', other);
      const before = digest(c.top);
      await refusedAsChainFile(convert({ source: c.top, output: other, existing: true }));
      expect(digest(c.top)).toBe(before);
    });

    it(`convert --force onto a ${via} link of the backing file is refused`, async () => {
      const c = await chain();
      await refusedAsChainFile(convert({ source: c.top, output: c[via], format: 'raw', force: true }));
      expect(digest(c.base)).toBe(digest(c.hard));
      expect(readFileSync(c.hard)[0]).toBe(0x11);
    });

    it(`convert -n onto a ${via} link of a VMDK extent is refused`, async () => {
      const dir = join(root, `vmdk-${via}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'disk-flat.raw'), Buffer.alloc(MiB, 0x33));
      writeFileSync(join(dir, 'disk.vmdk'), vmdkNaming('disk-flat.raw', MiB / 512));
      const other = join(dir, 'other.raw');
      if (via === 'hard') linkSync(join(dir, 'disk-flat.raw'), other);
      else symlinkSync('disk-flat.raw', other);
      await refusedAsChainFile(convert({ source: join(dir, 'disk.vmdk'), output: other, format: 'raw', existing: true }));
    });

    it(`a qcow2 whose backing file is a ${via} link to itself: a loop for open, convert and resize`, async () => {
      const dir = join(root, `loop-${via}`);
      mkdirSync(dir);
      const self = join(dir, 'self.qcow2');
      writeFileSync(self, qcow2Naming({ backing: 'again.qcow2', backingFormat: 'qcow2' }));
      if (via === 'hard') linkSync(self, join(dir, 'again.qcow2'));
      else symlinkSync('self.qcow2', join(dir, 'again.qcow2'));
      const before = digest(self);
      await expect(openImage(self)).rejects.toThrow(/backing chain loops back/);
      await expect(convert({ source: self, output: join(dir, 'out.raw') })).rejects.toBeInstanceOf(CorruptImageError);
      await expect(resize({ image: self, size: '+1M' })).rejects.toThrow(/backing chain loops back/);
      expect(digest(self)).toBe(before);
    });
  }
});
