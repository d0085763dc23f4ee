/**
 * Confinement holds for the file actually opened, not only for the name checked a moment before.
 * Here the check is made to pass and the symlink it followed is then swapped to point outside the
 * image's folder — what a concurrent writer of that folder could do between the check and the
 * open. Every opener of a file an image names must refuse it rather than read the outside file.
 */
import { mkdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfinementError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { openedInside } from '../../src/formats/shared/paths.js';
import { buildVhd, utf16le } from '../vhd/build.js';
import { qcow2Naming, vmdkNaming } from '../helpers/named-files.js';
import { workDir } from '../helpers/work.js';

const after = vi.hoisted(() => ({ check: undefined as undefined | (() => void) }));
vi.mock('../../src/formats/shared/paths.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/formats/shared/paths.js')>();
  return {
    ...real,
    resolveConfined: (...args: Parameters<typeof real.resolveConfined>) => {
      const path = real.resolveConfined(...args);
      const swap = after.check;
      after.check = undefined;
      swap?.();
      return path;
    },
  };
});

const root = workDir('confinement-race');
let n = 0;

/** A folder with `inner.bin` (inside) and a symlink `link` to it; `secret.bin` lies outside. */
function folder(inner: Uint8Array): { dir: string; link: string; secret: string } {
  const base = join(root, `case${n++}`);
  const dir = join(base, 'images');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'inner.bin'), inner);
  const secret = join(base, 'secret.bin');
  writeFileSync(secret, inner.map(() => 0x53));
  const link = join(dir, 'link');
  symlinkSync('inner.bin', link);
  // After the next confinement check passes, the link is pointed outside.
  after.check = () => {
    unlinkSync(link);
    symlinkSync(secret, link);
  };
  return { dir, link, secret };
}

async function refused(path: string): Promise<void> {
  const err = await openImage(path).then(
    async (r) => {
      const head = await r.read(0, 16);
      await r.close();
      return new Error(`opened, first byte ${head[0]}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfinementError);
  expect((err as Error).message).toMatch(/lies outside the image's folder/);
}

describe('a symlink swapped between the confinement check and the open', () => {
  it('qcow2 backing file', async () => {
    const f = folder(new Uint8Array(1 << 20));
    writeFileSync(join(f.dir, 'top.qcow2'), qcow2Naming({ backing: 'link', backingFormat: 'raw' }));
    await refused(join(f.dir, 'top.qcow2'));
  });

  it('qcow2 external data file', async () => {
    const f = folder(new Uint8Array(1 << 20));
    writeFileSync(join(f.dir, 'data.qcow2'), qcow2Naming({ dataFile: 'link' }));
    await refused(join(f.dir, 'data.qcow2'));
  });

  it('VMDK extent', async () => {
    const f = folder(new Uint8Array(1 << 20));
    writeFileSync(join(f.dir, 'flat.vmdk'), vmdkNaming('link'));
    await refused(join(f.dir, 'flat.vmdk'));
  });

  it('VHD parent', async () => {
    const size = 1 << 21;
    const parent = buildVhd({ type: 'dynamic', size, blockSize: size, blocks: [] });
    const f = folder(parent.bytes);
    writeFileSync(f.secret, parent.bytes);
    const child = buildVhd({
      type: 'differencing',
      size,
      blockSize: size,
      blocks: [],
      parent: { uuid: parent.uuid, unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('link') }] },
    });
    writeFileSync(join(f.dir, 'child.vhd'), child.bytes);
    await refused(join(f.dir, 'child.vhd'));
  });

  it('a name that names another file after the open than the one opened is refused (swapped back)', () => {
    const f = folder(new Uint8Array(512));
    after.check = undefined;
    const inner = join(f.dir, 'inner.bin');
    const check = openedInside(f.link, { referrer: join(f.dir, 'top.qcow2'), what: 'backing file', allowOutside: false })!;
    expect(() => check(statSync(f.secret))).toThrow(/was replaced while it was being opened/);
    expect(() => check(statSync(inner))).not.toThrow();
    expect(openedInside(f.link, { referrer: join(f.dir, 'top.qcow2'), what: 'backing file', allowOutside: true })).toBeUndefined();
  });
});
