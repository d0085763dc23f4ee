/**
 * VDI against qemu-img 7.2: qemu's dynamic and static images (sizes that are not a multiple of
 * the 1 MiB block) read byte for byte as `qemu-img convert -O raw` reads them; images guestkit
 * writes pass `qemu-img check`, compare identical to their source and are laid out as qemu's; and
 * guestkit's check counts what qemu-img check counts on damaged block maps.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it, vi } from 'vitest';
import { checkImage, checkJson } from '../../src/api/check.js';
import { convert } from '../../src/api/convert.js';
import { imageInfo } from '../../src/api/info.js';
import { toMapEntry } from '../../src/api/map.js';
import { openImage } from '../../src/formats/open.js';
import { vdiDriver } from '../../src/formats/vdi/driver.js';
import { copyImage } from '../../src/stream/copy.js';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { describeOracle, qemuImg, qemuImgStatus, qemuInfoJson, qemuIo, qemuMapEntries, qemuToRaw } from '../helpers/oracle.js';
import { pseudoRandom, readImage, workDir } from '../helpers/work.js';
import { memorySink } from '../vhd/sparse-source.js';

vi.hoisted(() => {
  // Run the CLI from the sources when no build of this code exists yet (vitest run directly).
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  if (!fs.existsSync(new URL('../../dist/formats/vdi/reader.js', import.meta.url))) process.env.GUESTKIT_CLI_FROM_SOURCE = '1';
});

const MiB = 1024 * 1024;
/** Not a multiple of the 1 MiB block. */
const SIZE = 5 * MiB + 3072;

function sourceBytes(): Uint8Array {
  const d = new Uint8Array(SIZE);
  d.set(pseudoRandom(100 * 1024, 1), 0);
  d.set(pseudoRandom(40 * 1024, 2), 2 * MiB - 8192); // across a block boundary
  d.set(pseudoRandom(1024, 3), SIZE - 1024);
  return d;
}

const qemuInfo = (p: string) => qemuInfoJson(p, 'vdi');
const qemuMap = (p: string) => qemuMapEntries(p, 'vdi');

const ourRead = (path: string) => readImage(path);

async function ourMap(path: string): Promise<unknown[]> {
  const r = await openImage(path);
  const out = [];
  for await (const e of r.extents()) out.push({ ...toMapEntry(e) });
  await r.close();
  return out;
}

/** Changes one little-endian u32 of a copy of `path`. */
function patched(path: string, out: string, edits: Array<[number, number]>): string {
  const b = readFileSync(path);
  for (const [at, v] of edits) b.writeUInt32LE(v, at);
  writeFileSync(out, b);
  return out;
}

describeOracle('VDI against qemu-img', () => {
  const dir = workDir('vdi-oracle');
  const src = join(dir, 'src.raw');
  const made: Record<string, string> = {};

  beforeAll(() => {
    writeFileSync(src, sourceBytes());
    made.dynamic = join(dir, 'qemu-dynamic.vdi');
    qemuImg('convert', '-f', 'raw', '-O', 'vdi', src, made.dynamic);
    made.static = join(dir, 'qemu-static.vdi');
    qemuImg('convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', src, made.static);
    made.written = join(dir, 'qemu-written.vdi');
    qemuImg('create', '-q', '-f', 'vdi', made.written, `${9 * MiB + 512}`);
    qemuIo('vdi', made.written, 'write -P 0xcd 7M 4k', 'write -P 0xab 0 64k', `write -P 0x11 ${3 * MiB + 512} 1k`, `write -P 0x22 ${9 * MiB - 512} 1k`);
  });

  for (const name of ['dynamic', 'static', 'written']) {
    it(`reads qemu's ${name} VDI as qemu-img convert -O raw does, with the same size and map`, async () => {
      const path = made[name];
      const raw = join(dir, `${name}.raw`);
      qemuToRaw(path, raw, 'vdi');
      const ours = await ourRead(path);
      expect(ours.equals(readFileSync(raw))).toBe(true);
      const info = await imageInfo(path);
      expect(info.format).toBe('vdi');
      expect(info['virtual-size']).toBe(qemuInfo(path)['virtual-size']);
      expect(info['cluster-size']).toBe(qemuInfo(path)['cluster-size']);
      expect(info.subformat).toBe(name === 'static' ? 'static' : 'dynamic');
      // For a static image qemu looks through to the file's holes (BDRV_BLOCK_RECURSE), which Node
      // cannot see (no SEEK_HOLE): there the whole disk is one data run at the data offset.
      if (name === 'static') expect(await ourMap(path)).toEqual([{ start: 0, length: SIZE, depth: 0, present: true, zero: false, data: true, offset: qemuMap(path)[0].offset }]);
      else expect(await ourMap(path)).toEqual(qemuMap(path));
      expect(checkJson((await checkImage(path))!)).toEqual(JSON.parse(qemuImg('check', '-f', 'vdi', '--output=json', path)));
    });
  }

  for (const [name, options] of [
    ['dynamic', ''],
    ['static', 'static=on'],
  ] as const) {
    it(`writes a ${name} VDI that passes qemu-img check and compares identical`, async () => {
      const out = join(dir, `ours-${name}.vdi`);
      await convert({ source: src, output: out, format: 'vdi', options });
      const check = qemuImgStatus('check', out);
      expect(check.stdout).toContain('No errors were found on the image.');
      expect(check.status).toBe(0);
      const cmp = qemuImgStatus('compare', '-f', 'raw', '-F', 'vdi', src, out);
      expect(cmp.stdout).toContain('Images are identical');
      expect(cmp.status).toBe(0);
      // Laid out as qemu lays out its own: same size, same blocks at the same offsets.
      expect(qemuInfo(out)['virtual-size']).toBe(qemuInfo(made[name])['virtual-size']);
      expect(qemuMap(out)).toEqual(qemuMap(made[name]));
      expect(readFileSync(out).length).toBe(readFileSync(made[name]).length);
      const fs = (await imageInfo(out))['format-specific']!.data;
      expect(fs['image-uuid']).not.toBe('00000000-0000-0000-0000-000000000000');
      expect(fs['image-uuid']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });
  }

  for (const name of ['dynamic', 'static']) {
    it(`streams a ${name} VDI to a pipe that qemu-img checks and compares identical`, async () => {
      const reader = await openImage(made.written);
      const { sink, bytes } = memorySink(true);
      const w = await vdiDriver.create!(sink, { virtualSize: reader.virtualSize, options: { static: name === 'static' }, file: '<pipe>', allocation: () => reader.extents() });
      await copyImage(reader, w);
      await w.finish();
      await reader.close();
      const out = join(dir, `ours-pipe-${name}.vdi`);
      writeFileSync(out, await bytes());
      expect(qemuImgStatus('check', out).status).toBe(0);
      expect(qemuImgStatus('compare', '-f', 'vdi', '-F', 'vdi', made.written, out).status).toBe(0);
    });
  }

  it('counts the corruptions qemu-img check counts in damaged block maps', async () => {
    // qemu-dynamic.vdi: blocks 0, 1, 2 and 5 allocated (indices 0..3); map at 0x200, 6 blocks.
    const damaged = {
      duplicate: patched(made.dynamic, join(dir, 'dup.vdi'), [[0x200 + 4, 0]]),
      'too large': patched(made.dynamic, join(dir, 'large.vdi'), [[0x200 + 8, 77]]),
      'count mismatch': patched(made.dynamic, join(dir, 'count.vdi'), [[0x184, 9]]),
      all: patched(made.dynamic, join(dir, 'all.vdi'), [
        [0x200 + 4, 0],
        [0x200 + 8, 77],
        [0x200 + 12, 0xfffffffe],
      ]),
    };
    for (const [what, path] of Object.entries(damaged)) {
      const q = qemuImgStatus('check', '-f', 'vdi', '--output=json', path);
      const ours = (await checkImage(path))!;
      expect(checkJson(ours), what).toEqual(JSON.parse(q.stdout));
      expect(q.status).toBe(2);
    }
    const cli = guestkit(['check', '--output', 'json', damaged.all]);
    expect(cli.status).toBe(2);
    expect(JSON.parse(cli.stdout)).toEqual(JSON.parse(qemuImgStatus('check', '-f', 'vdi', '--output=json', damaged.all).stdout));
  });

  it('guestkit convert -O vdi to standard output, and guestkit info, agree with qemu-img', () => {
    const r = guestkitBinary(['convert', '-O', 'vdi', made.written, '-']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = join(dir, 'ours-stdout.vdi');
    writeFileSync(out, r.stdout);
    expect(qemuImgStatus('check', out).status).toBe(0);
    expect(qemuImgStatus('compare', '-f', 'vdi', '-F', 'vdi', made.written, out).status).toBe(0);
    const info = JSON.parse(guestkit(['info', '--output', 'json', out]).stdout);
    expect(info.format).toBe('vdi');
    expect(info['virtual-size']).toBe(qemuInfo(out)['virtual-size']);
  });
});
