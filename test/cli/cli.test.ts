import { describe, expect, it } from 'vitest';
import { realWorld, realWorldNames } from '../helpers/real-world.js';
import { existsSync, readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { guestkit, guestkitBinary } from '../helpers/cli.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('cli');

describe('guestkit CLI', () => {
  it('prints its version and help', () => {
    const v = guestkit(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const cmd of ['detect', 'info', 'convert', 'map', 'check', 'compare', 'create']) {
      const h = guestkit([cmd, '--help']);
      expect(h.status, cmd).toBe(0);
      expect(h.stdout, cmd).toMatch(/Examples:/);
    }
  });

  it('detects by content with positional and --image forms, text and JSON', () => {
    const img = join(dir, 'looks-like.qcow2');
    writeFileSync(img, pseudoRandom(4096, 3));
    expect(guestkit(['detect', img]).stdout.trim()).toBe('raw');
    const j = guestkit(['detect', '--image', img, '--json']);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ filename: img, format: 'raw' });
  });

  it('detects every shared sample without error', () => {
    for (const f of realWorldNames()) {
      const r = guestkit(['detect', realWorld(f)]);
      expect(r.status, f).toBe(0);
      expect(r.stderr, f).toBe('');
    }
  });

  it('gives a one-line error and exit 1 for a missing or unreadable image, never a stack trace', () => {
    for (const cmd of ['detect', 'info', 'map']) {
      const r = guestkit([cmd, join(dir, 'nope.img')]);
      expect(r.status, cmd).toBe(1);
      expect(r.stderr.trim().split('\n'), cmd).toHaveLength(1);
      expect(r.stderr, cmd).toMatch(/nope\.img: open failed: ENOENT/);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
    const d = guestkit(['info', dir]);
    expect(d.status).toBe(1);
    expect(d.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 on usage errors', () => {
    expect(guestkit(['convert']).status).toBe(2);
    expect(guestkit(['convert', '--bogus', 'a', 'b']).status).toBe(2);
    expect(guestkit(['info']).status).toBe(2);
    expect(guestkit(['frobnicate']).status).toBe(2);
    const r = guestkit(['convert', '-O', 'nosuchformat', join(dir, 'x'), join(dir, 'y')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown output format 'nosuchformat'; formats guestkit can write: /);
  });

  it('converts raw to raw with both flag styles, sparse, and refuses to overwrite without --force', () => {
    const src = join(dir, 'src.img');
    const data = new Uint8Array(3 * 1024 * 1024);
    data.set(pseudoRandom(70_000, 9), 1_000_000);
    writeFileSync(src, data);
    const out1 = join(dir, 'out1.raw');
    expect(guestkit(['convert', '-O', 'raw', src, out1]).status).toBe(0);
    expect(Buffer.compare(readFileSync(out1), Buffer.from(data))).toBe(0);
    // Holes where the source is zero.
    expect(statSync(out1).blocks * 512).toBeLessThan(data.length / 2);

    const out2 = join(dir, 'out2.img');
    const r = guestkit(['convert', '--source', src, '--output', out2, '--format', 'raw', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ success: true, format: 'raw', virtualSize: data.length, outputSize: data.length });

    const again = guestkit(['convert', src, out2]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect(guestkit(['convert', '--force', src, out2]).status).toBe(0);
    // No temporary files left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses to convert an image onto itself', () => {
    const src = join(dir, 'self.raw');
    writeFileSync(src, pseudoRandom(4096, 5));
    const r = guestkit(['convert', '--force', src, src]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is the source image/);
    expect(readFileSync(src).length).toBe(4096);
  });

  it('writes raw to standard output', () => {
    const src = join(dir, 'pipe.raw');
    const data = pseudoRandom(200_000, 11);
    data.fill(0, 50_000, 150_000);
    writeFileSync(src, data);
    const r = guestkitBinary(['convert', '-O', 'raw', src, '-']);
    expect(r.status).toBe(0);
    expect(Buffer.compare(r.stdout, Buffer.from(data))).toBe(0);
  });

  it('reads raw from standard input (spooled sparsely, nothing left behind) into any format', () => {
    const data = pseudoRandom(300 * 1024, 13);
    data.fill(0, 100_000, 250_000);
    const out = join(dir, 'from-stdin.qcow2');
    const r = guestkit(['convert', '-O', 'qcow2', '-', out], { input: Buffer.from(data) });
    expect(r.status, r.stderr).toBe(0);
    const back = guestkitBinary(['convert', '-O', 'raw', out, '-']);
    expect(Buffer.compare(back.stdout, Buffer.from(data))).toBe(0);
    const notRaw = guestkit(['convert', '-f', 'vhd', '-', join(dir, 'x.raw')], { input: Buffer.from(data) });
    expect(notRaw.status).toBe(1);
    expect(notRaw.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('shows progress with -p and info/map/compare/create behave like qemu-img', () => {
    const src = join(dir, 'p.raw');
    writeFileSync(src, pseudoRandom(1 << 20, 2));
    const out = join(dir, 'p-out.raw');
    const p = guestkit(['convert', '-p', src, out]);
    expect(p.status).toBe(0);
    expect(p.stderr).toMatch(/100\.00\/100%/);

    const pj = guestkit(['convert', '--progress', 'json', '--force', src, out]);
    expect(pj.status).toBe(0);
    const lines = pj.stderr.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ done: 1 << 20, total: 1 << 20 });
    expect(typeof lines.at(-1).bytesPerSecond).toBe('number');
    for (let i = 1; i < lines.length; i++) expect(lines[i].done).toBeGreaterThan(lines[i - 1].done);

    const info = JSON.parse(guestkit(['info', '--output', 'json', src]).stdout);
    expect(info).toMatchObject({ filename: src, format: 'raw', 'virtual-size': 1 << 20, 'dirty-flag': false });
    expect(JSON.parse(guestkit(['info', '--json', src]).stdout)).toEqual(info);
    expect(guestkit(['info', src]).stdout).toMatch(/virtual size: 1 MiB \(1048576 bytes\)/);

    const map = JSON.parse(guestkit(['map', '--output', 'json', src]).stdout);
    expect(map).toEqual([{ start: 0, length: 1 << 20, depth: 0, present: true, zero: false, data: true, offset: 0 }]);

    expect(guestkit(['compare', src, out]).stdout).toBe('Images are identical.\n');
    const other = join(dir, 'other.raw');
    const changed = pseudoRandom(1 << 20, 2);
    changed[777_777] ^= 0xff;
    writeFileSync(other, changed);
    const c = guestkit(['compare', src, other]);
    expect(c.status).toBe(1);
    expect(c.stdout).toBe('Content mismatch at offset 777777!\n');
    expect(guestkit(['compare', src, join(dir, 'missing')]).status).toBe(2);

    const created = join(dir, 'new.raw');
    const cr = guestkit(['create', '-f', 'raw', created, '3M']);
    expect(cr.status).toBe(0);
    expect(statSync(created).size).toBe(3 * 1024 * 1024);
    expect(guestkit(['create', '-f', 'raw', created, '3M']).status).toBe(2);

    const chk = guestkit(['check', src]);
    expect(chk.status).toBe(63);
  });

  it('compares images of different sizes as qemu-img does', () => {
    const a = join(dir, 'short.raw');
    const b = join(dir, 'long.raw');
    const data = pseudoRandom(8192, 4);
    writeFileSync(a, data);
    writeFileSync(b, Buffer.concat([Buffer.from(data), Buffer.alloc(8192)]));
    const r = guestkit(['compare', a, b]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Image size mismatch!\nImages are identical\./);
    expect(guestkit(['compare', '-s', a, b]).status).toBe(1);
  });
});
