/**
 * Backing chains: names resolved against the overlay's folder, refused outside it unless allowed,
 * loops and missing files refused with typed errors, raw bases, and info without opening them.
 */
import { beforeAll, expect, it } from 'vitest';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describeOracle, qemuImg, qemuIo } from '../helpers/oracle.js';
import { workDir } from '../helpers/work.js';
import { openImage } from '../../src/formats/open.js';
import { toQemuInfo } from '../../src/api/info.js';
import { ConfinementError, CorruptImageError, IoError } from '../../src/errors.js';
import { qemuInfo, qemuRaw, readAll } from './helpers.js';

describeOracle('qcow2 backing chains', () => {
  const dir = workDir('qcow2-backing');
  const inside = join(dir, 'vm');
  const outside = join(dir, 'elsewhere');
  beforeAll(() => {
    mkdirSync(inside);
    mkdirSync(outside);
    qemuImg('create', '-q', '-f', 'qcow2', join(outside, 'base.qcow2'), '4M');
    qemuIo('qcow2', join(outside, 'base.qcow2'), 'write -P 0x61 0 1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', '../elsewhere/base.qcow2', '-F', 'qcow2', join(inside, 'rel.qcow2'));
    qemuImg('create', '-q', '-f', 'qcow2', '-b', join(outside, 'base.qcow2'), '-F', 'qcow2', join(inside, 'abs.qcow2'));
    symlinkSync(join(outside, 'base.qcow2'), join(inside, 'link.qcow2'));
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'link.qcow2', '-F', 'qcow2', join(inside, 'via-link.qcow2'));
    qemuImg('create', '-q', '-f', 'raw', join(inside, 'base.raw'), '2M');
    qemuIo('raw', join(inside, 'base.raw'), 'write -P 0x72 1M 512k');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', join(inside, 'over-raw.qcow2'), '4M');
    qemuIo('qcow2', join(inside, 'over-raw.qcow2'), 'write -P 0x73 1536k 64k');
    // A loop: a → b → a, made without opening the backing files.
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'loop-b.qcow2', '-F', 'qcow2', join(inside, 'loop-a.qcow2'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'loop-a.qcow2', '-F', 'qcow2', join(inside, 'loop-b.qcow2'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'missing.qcow2', '-F', 'qcow2', join(inside, 'orphan.qcow2'), '1M');
  });

  for (const name of ['rel.qcow2', 'abs.qcow2', 'via-link.qcow2']) {
    it(`${name}: a backing file outside the image's folder is refused by default, read when allowed`, async () => {
      const path = join(inside, name);
      const err = await openImage(path).catch((e) => e);
      expect(err).toBeInstanceOf(ConfinementError);
      expect(err.message).toMatch(/outside the image's folder/);
      expect(Buffer.compare(await readAll(path, { allowOutside: true }), qemuRaw(dir, path))).toBe(0);
    });
  }

  it('a raw backing file (backing_fmt=raw), shorter than the overlay', async () => {
    const path = join(inside, 'over-raw.qcow2');
    expect(Buffer.compare(await readAll(path), qemuRaw(dir, path))).toBe(0);
    const r = await openImage(path);
    const ours = toQemuInfo(path, r.info());
    await r.close();
    const q = qemuInfo(path);
    expect([ours['backing-filename'], ours['full-backing-filename'], ours['backing-filename-format']]).toEqual([
      q['backing-filename'],
      q['full-backing-filename'],
      q['backing-filename-format'],
    ]);
    expect(r.files()).toEqual([path, join(inside, 'base.raw')]);
  });

  it('a backing loop is refused', async () => {
    const err = await openImage(join(inside, 'loop-a.qcow2')).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err.message).toMatch(/loops/);
  });

  it('a missing backing file is an I/O error naming it; info without backing files still works', async () => {
    const err = await openImage(join(inside, 'orphan.qcow2')).catch((e) => e);
    expect(err).toBeInstanceOf(IoError);
    expect(err.message).toMatch(/missing\.qcow2/);
    const r = await openImage(join(inside, 'orphan.qcow2'), { openBacking: false });
    expect(r.info().backingFile).toBe('missing.qcow2');
    expect((await r.read(0, 4096)).every((b) => b === 0)).toBe(true);
    await r.close();
  });
});
