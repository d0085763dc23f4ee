/**
 * The committed VMDK fixtures (fixtures/vmdk, made by qemu-img and by hand) read to the virtual
 * disks their MANIFEST records — the one VMDK reading test that needs no qemu-img.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openImage } from '../../src/formats/open.js';
import { openAsPipe, readAll } from './helpers.js';

const DIR = fileURLToPath(new URL('../../fixtures/vmdk/', import.meta.url));
const manifest = readFileSync(join(DIR, 'MANIFEST.md'), 'utf8');

/** file name → [file sha256, virtual disk sha256] from the MANIFEST table. */
function recorded(name: string): [string, string] {
  const row = manifest.split('\n').find((l) => l.startsWith(`| ${name} |`));
  if (!row) throw new Error(`${name} is not in MANIFEST.md`);
  const cells = row.split('|').map((c) => c.trim());
  return [cells[4], cells[5]];
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('committed VMDK fixtures', () => {
  for (const name of ['qemu-sparse.vmdk', 'qemu-stream.vmdk', 'qemu-delta.vmdk', 'cowd.vmdk']) {
    it(`${name} reads to the disk its manifest records`, async () => {
      const [fileSha, diskSha] = recorded(name);
      expect(sha(readFileSync(join(DIR, name)))).toBe(fileSha);
      const r = await openImage(join(DIR, name));
      try {
        expect(sha(await readAll(r))).toBe(diskSha);
      } finally {
        await r.close();
      }
    });
  }

  it('the QEMU-layout stream reads the same from a pipe', async () => {
    const r = await openAsPipe(join(DIR, 'qemu-stream.vmdk'), 333);
    try {
      expect(sha(await readAll(r))).toBe(recorded('qemu-stream.vmdk')[1]);
      expect(r.info().formatSpecific!['adapter-type']).toBe('lsilogic');
    } finally {
      await r.close();
    }
  });

  it('the delta names its parent, and the COWD disk its extent', async () => {
    const d = await openImage(join(DIR, 'qemu-delta.vmdk'));
    const c = await openImage(join(DIR, 'cowd.vmdk'));
    try {
      expect(d.info().backingFile).toBe('qemu-sparse.vmdk');
      expect(d.files().map((f) => f.split('/').pop())).toEqual(['qemu-delta.vmdk', 'qemu-sparse.vmdk']);
      expect(c.info().subformat).toBe('vmfsSparse');
      expect(c.files().map((f) => f.split('/').pop())).toEqual(['cowd.vmdk', 'cowd-delta.vmdk']);
    } finally {
      await d.close();
      await c.close();
    }
  });
});
