/**
 * Properties of resize that need no oracle: the size parser agrees with its definition on any
 * input (and fails only with a UsageError), and growing a qcow2 image — any cluster size, v2 or
 * v3, random content, random new size — keeps every byte, reads zeros after the old end, and leaves
 * metadata our own check (the port of qemu-img check) finds clean.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkImage } from '../../src/api/check.js';
import { convert } from '../../src/api/convert.js';
import { parseResizeSize, resize } from '../../src/api/resize.js';
import { UsageError } from '../../src/errors.js';
import { openImage } from '../../src/formats/open.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

describe('parseResizeSize', () => {
  it('reads [+|-]N[K|M|G|T] as an absolute size or a change', () => {
    fc.assert(
      fc.property(fc.constantFrom('', '+', '-'), fc.nat(1_000_000), fc.constantFrom('', 'k', 'K', 'm', 'M', 'g', 'G', 't'), (sign, n, suffix) => {
        const bytes = n * UNIT[suffix.toLowerCase()];
        if (!Number.isSafeInteger(bytes)) {
          expect(() => parseResizeSize(`${sign}${n}${suffix}`)).toThrow(UsageError);
          return;
        }
        const t = parseResizeSize(`${sign}${n}${suffix}`);
        if (sign === '') expect(t).toEqual({ size: bytes });
        else expect(t).toEqual({ delta: sign === '-' ? -bytes : bytes });
      }),
    );
  });

  it('any other text is a UsageError, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        try {
          const t = parseResizeSize(text);
          const v = 'size' in t ? t.size : t.delta;
          expect(Number.isSafeInteger(v)).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
        }
      }),
    );
  });
});

describe('growing a qcow2 image keeps its content and reads zeros after the old end', () => {
  const dir = workDir('resize-prop');
  let n = 0;

  it('for random cluster sizes, versions, contents and new sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          clusterBits: fc.integer({ min: 9, max: 13 }),
          compat: fc.constantFrom('0.10', '1.1'),
          sectors: fc.integer({ min: 1, max: 2048 }),
          pieces: fc.array(fc.record({ at: fc.nat(), length: fc.integer({ min: 1, max: 8192 }), seed: fc.integer({ min: 1, max: 1 << 30 }) }), { maxLength: 6 }),
          growSectors: fc.integer({ min: 1, max: 16 * 2048 }),
          relative: fc.boolean(),
        }),
        async (p) => {
          const size = p.sectors * 512;
          const content = new Uint8Array(size);
          for (const piece of p.pieces) {
            const at = piece.at % size;
            content.set(pseudoRandom(Math.min(piece.length, size - at), piece.seed), at);
          }
          const id = n++;
          const raw = join(dir, `p${id}.raw`);
          writeFileSync(raw, content);
          const image = join(dir, `p${id}.qcow2`);
          await convert({ source: raw, output: image, format: 'qcow2', options: `compat=${p.compat},cluster_size=${2 ** p.clusterBits}`, durable: false });
          const newSize = size + p.growSectors * 512;
          const r = await resize({ image, size: p.relative ? `+${p.growSectors * 512}` : String(newSize) });
          expect(r).toEqual({ format: 'qcow2', oldSize: size, newSize });

          const reader = await openImage(image);
          try {
            expect(reader.virtualSize).toBe(newSize);
            expect(Buffer.from(await reader.read(0, size)).equals(Buffer.from(content))).toBe(true);
            const tail = await reader.read(size, newSize - size);
            expect(tail.every((b) => b === 0)).toBe(true);
          } finally {
            await reader.close();
          }
          const check = await checkImage(image);
          expect(check).toMatchObject({ corruptions: 0, leaks: 0, checkErrors: 0 });
        },
      ),
      { numRuns: 20 },
    );
  });
});
