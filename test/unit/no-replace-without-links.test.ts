/**
 * On a filesystem without hard links (vfat, exFAT, some FUSE mounts: link() fails with EPERM or
 * ENOTSUP) the final name is reserved with an exclusive create and the temporary file renamed over
 * that placeholder: still never replacing another writer's file. link() is made to fail here as
 * it does there.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { OutputExistsError } from '../../src/errors.js';
import { AtomicOutput } from '../../src/stream/atomic.js';
import { workDir } from '../helpers/work.js';

const calls = vi.hoisted(() => ({ link: 0, code: 'EPERM' }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    link: async () => {
      calls.link++;
      throw Object.assign(new Error(`${calls.code}: link`), { code: calls.code });
    },
  };
});

const dir = workDir('no-links');

describe('committing without replacing, where the filesystem has no hard links', () => {
  for (const code of ['EPERM', 'ENOTSUP']) {
    it(`link() failing with ${code}: the first commit wins, the second is refused, nothing is left behind`, async () => {
      calls.code = code;
      calls.link = 0;
      const path = join(dir, `${code}.raw`);
      const a = await AtomicOutput.create(path);
      const b = await AtomicOutput.create(path);
      await a.sink.write(0, new Uint8Array([1, 1]));
      await b.sink.write(0, new Uint8Array([2]));
      await a.output.commit();
      expect(calls.link).toBe(1);
      expect([...readFileSync(path)]).toEqual([1, 1]);
      await expect(b.output.commit()).rejects.toBeInstanceOf(OutputExistsError);
      await b.output.discard();
      expect([...readFileSync(path)]).toEqual([1, 1]);
      expect(readdirSync(dir).filter((f) => f.includes(code))).toEqual([`${code}.raw`]);
    });
  }
});
