/**
 * "An existing output is never replaced without --force" holds at commit, not only at start: two
 * conversions to one output used to both succeed, the later rename silently replacing the other.
 * Now the final name is made with link(), which fails when the name exists.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/api/convert.js';
import { OutputExistsError, UsageError } from '../../src/errors.js';
import { AtomicOutput } from '../../src/stream/atomic.js';
import type { ByteSink } from '../../src/stream/sink.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('no-replace');
const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const leftovers = (prefix: string) => readdirSync(dir).filter((f) => f.startsWith(`.${prefix}`));

/** Holds each sink's first write until `n` sinks have reached theirs: every writer is past the start-up check. */
function barrier(n: number): (s: ByteSink) => ByteSink {
  let waiting = 0;
  let open!: () => void;
  const all = new Promise<void>((r) => (open = r));
  return (s) => {
    let first = true;
    return new Proxy(s, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop !== 'write' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
        return async (...args: unknown[]) => {
          if (first) {
            first = false;
            if (++waiting === n) open();
            await all;
          }
          return (v as (...a: unknown[]) => Promise<void>).apply(target, args);
        };
      },
    });
  };
}

describe('an existing output is never replaced without --force, even one that appears during the run', () => {
  it('two concurrent conversions to one output: exactly one succeeds, the other is told to pass --force, the winner is intact', async () => {
    const sources = [0, 1, 2].map((i) => {
      const p = join(dir, `src${i}.raw`);
      writeFileSync(p, pseudoRandom((1 + i) << 20, 10 + i));
      return p;
    });
    const output = join(dir, 'race.raw');
    const sink = barrier(sources.length);
    const results = await Promise.allSettled(sources.map((source) => convert({ source, output, format: 'raw', io: { sink } })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(OutputExistsError);
        expect(r.reason).toBeInstanceOf(UsageError);
        expect(r.reason.message).toMatch(/race\.raw already exists; pass --force/);
      }
    }
    expect(digest(readFileSync(output))).toBe(digest(readFileSync(sources[won[0]])));
    expect(leftovers('race.raw')).toEqual([]);
  });

  it('a dangling symlink is an existing name: refused at start, not after the work', async () => {
    const path = join(dir, 'dangling.raw');
    symlinkSync('nowhere', path);
    await expect(AtomicOutput.create(path)).rejects.toBeInstanceOf(OutputExistsError);
    expect(leftovers('dangling.raw')).toEqual([]);
  });

  it('with --force the later commit replaces the file', async () => {
    const path = join(dir, 'forced.raw');
    const a = await AtomicOutput.create(path, { force: true });
    const b = await AtomicOutput.create(path, { force: true });
    await a.sink.write(0, new Uint8Array([1]));
    await b.sink.write(0, new Uint8Array([2]));
    await a.output.commit();
    await b.output.commit();
    expect([...readFileSync(path)]).toEqual([2]);
    expect(leftovers('forced.raw')).toEqual([]);
  });

  it('an output of several files commits all or none: one name taken meanwhile leaves the others uncommitted', async () => {
    const main = join(dir, 'split.vmdk');
    const side = join(dir, 'split-s001.vmdk');
    const { output, sink } = await AtomicOutput.create(main);
    const sideSink = await output.add(side);
    await sink.write(0, new Uint8Array([1]));
    await sideSink.write(0, new Uint8Array([2]));
    writeFileSync(side, 'someone else');
    await expect(output.commit()).rejects.toBeInstanceOf(OutputExistsError);
    await output.discard();
    expect(existsSync(main)).toBe(false);
    expect(readFileSync(side, 'utf8')).toBe('someone else');
    expect(leftovers('split')).toEqual([]);
  });
});
