/**
 * `guestkit resize` as a user runs it (the built CLI in a child process): success prints what
 * qemu-img prints, -q prints nothing, --help shows examples, a negative size is an argument, and
 * failures are one line on stderr with the usual exit codes (2 usage, 1 anything else).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { guestkit } from '../helpers/cli.js';
import { sha256File, workDir } from '../helpers/work.js';
import { MiB, contentFor } from './helpers.js';

vi.hoisted(() => {
  // Run the CLI from the sources when no build of this code exists yet (vitest run directly).
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  if (!fs.existsSync(new URL('../../dist/api/resize.js', import.meta.url))) process.env.GUESTKIT_CLI_FROM_SOURCE = '1';
});

describe('guestkit resize (CLI)', () => {
  const dir = workDir('resize-cli');
  const raw = join(dir, 'disk.img');
  writeFileSync(raw, contentFor(2 * MiB, 4));

  it('grows, prints "Image resized.", and -q prints nothing', () => {
    let r = guestkit(['resize', raw, '+1M']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('Image resized.\n');
    expect(statSync(raw).size).toBe(3 * MiB);
    r = guestkit(['resize', '-q', '-f', 'raw', raw, '4M']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(statSync(raw).size).toBe(4 * MiB);
  });

  it('takes a negative size as an argument; shrinking needs --shrink (exit 2, one line, file unchanged)', () => {
    const before = sha256File(raw);
    const r = guestkit(['resize', raw, '-1M']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--shrink/);
    expect(sha256File(raw)).toBe(before);
    const ok = guestkit(['resize', '--shrink', raw, '-1M']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(raw).length).toBe(3 * MiB);
  });

  it('unsupported formats and broken images fail with exit 1 and one line', () => {
    const vmdk = join(dir, 'x.vmdk');
    expect(guestkit(['create', '-f', 'vmdk', vmdk, '1M']).status).toBe(0);
    let r = guestkit(['resize', vmdk, '+1M']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`guestkit: ${vmdk}: resizing vmdk images is not supported\n`);
    const q = join(dir, 'bad.qcow2');
    writeFileSync(q, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(40)]));
    r = guestkit(['resize', '-f', 'qcow2', q, '+1M']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/the file ends inside the qcow2 header: it needs 72 bytes/);
  });

  it('usage errors: missing size, unknown option', () => {
    expect(guestkit(['resize', raw]).status).toBe(2);
    const r = guestkit(['resize', '--shrnk', raw]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--shrnk'/);
  });

  it('--help shows the synopsis and examples', () => {
    const r = guestkit(['resize', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: guestkit resize \[options\] \[image\] \[size\]/);
    expect(r.stdout).toMatch(/--shrink/);
    expect(r.stdout).toMatch(/Examples:\n {2}guestkit resize disk.qcow2 20G/);
  });
});
