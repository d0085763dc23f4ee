/**
 * Fault injection through the whole conversion: a source or sink that fails on its Nth call.
 * Transient errors (EAGAIN) are retried and the output is still exact; permanent ones (EIO,
 * ENOSPC) give a clear error and leave no output file.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { convert } from '../../src/api/convert.js';
import { openImage } from '../../src/formats/open.js';
import { IoError } from '../../src/errors.js';
import type { ByteSource } from '../../src/stream/source.js';
import type { ByteSink } from '../../src/stream/sink.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const fast = { attempts: 5, baseDelayMs: 1, maxDelayMs: 5 };

function failingSource(inner: ByteSource, failAt: number[], errno: string): ByteSource {
  let n = 0;
  const fail = (o: number) => {
    if (failAt.includes(++n)) throw new IoError(`read failed: ${errno}`, { file: inner.name, offset: o, errno });
  };
  return {
    name: inner.name,
    size: inner.size,
    seekable: inner.seekable,
    read: async (o, l, into) => (fail(o), inner.read(o, l, into)),
    readUpTo: async (o, l, into) => (fail(o), inner.readUpTo(o, l, into)),
    close: () => inner.close(),
  };
}

function failingSink(inner: ByteSink, failAt: number[], errno: string): ByteSink {
  let n = 0;
  return {
    name: inner.name,
    seekable: inner.seekable,
    write: async (o, d) => {
      if (failAt.includes(++n)) throw new IoError(`write failed: ${errno}`, { file: inner.name, offset: o, errno });
      return inner.write(o, d);
    },
    setLength: (l) => inner.setLength(l),
    sync: () => inner.sync(),
    close: () => inner.close(),
  };
}

describe('fault injection through convert', () => {
  const dir = workDir('faults');
  const src = join(dir, 'src.raw');
  const data = pseudoRandom(6 * 1024 * 1024, 21);
  data.fill(0, 2 << 20, 3 << 20);
  writeFileSync(src, data);
  const leftovers = () => readdirSync(dir).filter((f) => f !== 'src.raw' && !f.startsWith('ok-'));

  for (const format of ['raw', 'qcow2', 'vmdk', 'vhd', 'vdi']) {
    it(`${format}: transient EAGAIN on reads and writes is retried and the output is exact`, async () => {
      const out = join(dir, `ok-${format}.img`);
      await convert({
        source: src,
        output: out,
        format,
        durable: false,
        retry: fast,
        io: { source: (s) => failingSource(s, [2, 3, 5], 'EAGAIN'), sink: (s) => failingSink(s, [1, 4, 6], 'EAGAIN') },
      });
      const r = await openImage(out, { format });
      const back = await r.read(0, data.length);
      await r.close();
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    });

    for (const [side, errno] of [
      ['source', 'EIO'],
      ['sink', 'ENOSPC'],
    ] as const) {
      it(`${format}: a permanent ${errno} on the ${side} fails clearly and leaves no output`, async () => {
        const out = join(dir, `fail-${format}-${errno}.img`);
        const io = side === 'source' ? { source: (s: ByteSource) => failingSource(s, [3], errno) } : { sink: (s: ByteSink) => failingSink(s, [2], errno) };
        await expect(convert({ source: src, output: out, format, retry: fast, io })).rejects.toMatchObject({ name: 'IoError', errno });
        expect(existsSync(out)).toBe(false);
        expect(leftovers()).toEqual([]);
      });
    }
  }

  it('the source file is never modified', () => {
    expect(Buffer.compare(readFileSync(src), Buffer.from(data))).toBe(0);
  });
});
