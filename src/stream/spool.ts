/**
 * Raw data from a pipe has no size until its end, and every writer needs the virtual size before
 * its first byte. So raw input from a pipe is spooled to a temporary file first — sparsely: zero
 * stretches become holes — and converted from there. The file is unlinked as soon as it is opened,
 * so nothing is left behind whatever happens to the process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSink } from './sink.js';
import { FileSource, type ByteSource } from './source.js';
import { isZero } from './zero.js';

const CHUNK = 1024 * 1024;
const HOLE_UNIT = 64 * 1024;

export async function spoolToTempFile(source: ByteSource, dir = tmpdir()): Promise<FileSource> {
  const folder = await mkdtemp(join(dir, 'guestkit-spool-'));
  const path = join(folder, 'stdin.raw');
  try {
    const sink = await FileSink.open(path, 'wx', source.name);
    const buf = new Uint8Array(CHUNK);
    let offset = 0;
    try {
      for (;;) {
        const got = await source.readUpTo(offset, CHUNK, buf);
        if (got.length === 0) break;
        for (let at = 0; at < got.length; at += HOLE_UNIT) {
          const piece = got.subarray(at, Math.min(got.length, at + HOLE_UNIT));
          if (!isZero(piece)) await sink.write(offset + at, piece);
        }
        offset += got.length;
        if (got.length < CHUNK) break;
      }
      await sink.setLength(offset);
    } finally {
      await sink.close();
    }
    const spooled = await FileSource.open(path, source.name);
    return spooled;
  } finally {
    // Unlinked while open: the data stays readable through the handle, and no file remains.
    await rm(folder, { recursive: true, force: true });
    await source.close();
  }
}
