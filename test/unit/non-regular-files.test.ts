/**
 * Only regular files and block devices are images. A FIFO named by an image (or given as the
 * input) used to block open() for ever on a libuv thread; a character device would be read as an
 * endless disk. Each is refused before it is opened, with a message naming the file and its kind.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoError } from '../../src/errors.js';
import { openImage, type OpenOptions } from '../../src/formats/open.js';
import { FileSource } from '../../src/stream/source.js';
import { openImageFile } from '../../src/stream/open-file.js';
import { buildVhd, utf16le } from '../vhd/build.js';
import { qcow2Naming, vmdkNaming } from '../helpers/named-files.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const root = workDir('non-regular');
let n = 0;
function folder(): string {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir);
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  return dir;
}

/** Settles `p`, or fails the test when it is still pending after `ms` (a hang, not a refusal). */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms: the open hung`)), ms))]);
}

async function refusal(path: string, opts: OpenOptions = {}): Promise<IoError> {
  const err = await within(openImage(path, opts).then(async (r) => (await r.close(), undefined), (e: unknown) => e));
  expect(err).toBeInstanceOf(IoError);
  expect(err).toMatchObject({ errno: 'EFTYPE' });
  return err as IoError;
}

describe('files that are not images are refused before they are opened', () => {
  it('the opener takes regular files and refuses FIFOs, directories and character devices, naming the kind', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'plain'), pseudoRandom(4096));
    const ok = await openImageFile(join(dir, 'plain'));
    expect(ok.kind).toBe('file');
    await ok.fh.close();
    await expect(within(openImageFile(join(dir, 'fifo')))).rejects.toThrow(/is a FIFO \(named pipe\), not a regular file or block device/);
    await expect(within(openImageFile('/dev/null', 'null'))).rejects.toThrow(/null: is a character device/);
    await expect(within(FileSource.open(dir))).rejects.toMatchObject({ errno: 'EISDIR' });
  });

  it('a FIFO as the input image says how to read a pipe', async () => {
    const dir = folder();
    const err = await refusal(join(dir, 'fifo'));
    expect(err.file).toBe(join(dir, 'fifo'));
    expect(err.message).toMatch(/only as '-', standard input/);
  });

  it('qcow2: a backing file that is a FIFO, or a device reached through a symlink', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'top.qcow2'), qcow2Naming({ backing: 'fifo' }));
    expect((await refusal(join(dir, 'top.qcow2'))).message).toContain(join(dir, 'fifo'));
    writeFileSync(join(dir, 'fmt.qcow2'), qcow2Naming({ backing: 'fifo', backingFormat: 'raw' }));
    await refusal(join(dir, 'fmt.qcow2'));
    symlinkSync('/dev/zero', join(dir, 'zero'));
    writeFileSync(join(dir, 'dev.qcow2'), qcow2Naming({ backing: 'zero' }));
    expect((await refusal(join(dir, 'dev.qcow2'), { allowOutside: true })).message).toMatch(/character device/);
  });

  it('qcow2: an external data file that is a FIFO', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'data.qcow2'), qcow2Naming({ dataFile: 'fifo' }));
    await refusal(join(dir, 'data.qcow2'));
  });

  it('VMDK: a flat or a sparse extent that is a FIFO', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'flat.vmdk'), vmdkNaming('fifo'));
    await refusal(join(dir, 'flat.vmdk'));
    writeFileSync(join(dir, 'sparse.vmdk'), vmdkNaming('fifo', 2048, 'SPARSE'));
    await refusal(join(dir, 'sparse.vmdk'));
  });

  it('VHD: a parent locator naming a FIFO', async () => {
    const dir = folder();
    const child = buildVhd({
      type: 'differencing',
      size: 1 << 21,
      blockSize: 1 << 21,
      blocks: [],
      parent: { uuid: new Uint8Array(16).fill(7), unicodeName: '', locators: [{ code: 'W2ru', data: utf16le('fifo') }] },
    });
    writeFileSync(join(dir, 'child.vhd'), child.bytes);
    const err = await within(openImage(join(dir, 'child.vhd')).then(() => undefined, (e: unknown) => e));
    expect(String(err)).toMatch(/FIFO/);
  });
});
