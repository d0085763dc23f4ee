/**
 * A streamOptimized VMDK read from a pipe that closes early is refused, wherever the cut falls:
 * in the header, in the tables, inside a grain, at a marker boundary, after the last grain but
 * before the footer or the end-of-stream marker. (The same bytes as a file were refused already;
 * from a pipe a cut at a marker boundary used to pass for the end of the stream.) A stream counts
 * as complete at its end-of-stream marker, or, in QEMU's layout (tables before the grains, no end
 * marker needed), once past the last grain its tables list; cuts after that change nothing.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isGuestkitError, TruncatedImageError } from '../../src/errors.js';
import { rootContext } from '../../src/formats/open.js';
import type { ImageWriter } from '../../src/formats/types.js';
import { isZero } from '../../src/stream/zero.js';
import { createHash } from 'node:crypto';
import { vmdkDriver } from '../../src/formats/vmdk/driver.js';
import { GD_AT_END, SPARSE_HEADER } from '../../src/formats/vmdk/layout.js';
import { RawReader } from '../../src/formats/raw/reader.js';
import { copyImage } from '../../src/stream/copy.js';
import { BufferSink } from '../../src/stream/sink.js';
import { BufferSource, StreamSource } from '../../src/stream/source.js';
import { describeOracle } from '../helpers/oracle.js';
import { guestkit } from '../helpers/cli.js';
import { realWorld } from '../helpers/real-world.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/vmdk/', import.meta.url));

/** What a conversion wrote, as a digest (a sample's disk may be 16 GiB, mostly holes). */
class DigestWriter implements ImageWriter {
  private readonly hash = createHash('sha256');
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (!isZero(data)) this.hash.update(`${offset}:`).update(data);
  }
  async writeZeroes(): Promise<void> {}
  async finish(): Promise<void> {}
  async abort(): Promise<void> {}
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** The bytes through a pipe (in uneven chunks), converted; resolves to a digest of the disk. */
async function throughPipe(bytes: Uint8Array): Promise<string> {
  async function* chunks() {
    for (let i = 0, n = 1; i < bytes.length; i += n, n = (n * 7919) % 65521 || 1) yield Buffer.from(bytes.subarray(i, i + n));
  }
  const reader = await vmdkDriver.open!(new StreamSource(Readable.from(chunks()), 'pipe'), rootContext('pipe', undefined, {}));
  try {
    const writer = new DigestWriter();
    await copyImage(reader, writer);
    return writer.digest();
  } finally {
    await reader.close();
  }
}

/**
 * Where the stream is complete, from an independent walk: the end of the end-of-stream marker,
 * or in QEMU's layout (grain directory inside the header region) the end of the last grain.
 */
function completeAt(bytes: Uint8Array): number {
  const h = SPARSE_HEADER.parse(bytes);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = Number(h.overHead) * 512;
  let lastGrainEnd = pos;
  while (pos + 512 <= bytes.length) {
    const size = v.getUint32(pos + 8, true);
    if (size > 0) {
      pos += Math.ceil((12 + size) / 512) * 512;
      lastGrainEnd = pos;
      continue;
    }
    const sectors = Number(v.getBigUint64(pos, true));
    const type = v.getUint32(pos + 12, true);
    if (type === 0 && sectors === 0) return h.gdOffset === GD_AT_END ? pos + 512 : lastGrainEnd;
    pos += (1 + sectors) * 512;
  }
  return lastGrainEnd;
}

function checkCuts(name: string, load: () => Uint8Array, runs: number): void {
  it(`${name}: every cut before the stream is complete is refused; later cuts give the same disk`, async () => {
    const bytes = load();
    const full = await throughPipe(bytes);
    const done = completeAt(bytes);
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThanOrEqual(bytes.length);
    // Every sector boundary near the interesting places, and random cuts anywhere.
    const edges = [0, 1, 511, 512, 513, 4096, 65536, done - 513, done - 512, done - 1, done, done + 1, bytes.length - 1].filter((c) => c >= 0 && c < bytes.length);
    const check = async (cut: number) => {
      const got = throughPipe(bytes.subarray(0, cut));
      // Short of a header, the bytes are not a VMDK yet (detection refuses them before any reader).
      if (cut < 512) await expect(got, `cut at ${cut}`).rejects.toSatisfy(isGuestkitError);
      else if (cut < done) await expect(got, `cut at ${cut}`).rejects.toBeInstanceOf(TruncatedImageError);
      else expect(await got, `cut at ${cut}`).toBe(full);
    };
    for (const cut of edges) await check(cut);
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: bytes.length - 1 }), check), { numRuns: runs });
    // Cut at each marker boundary (where a cut used to pass for the end of the stream).
    const h = SPARSE_HEADER.parse(bytes);
    for (let at = Number(h.overHead) * 512; at < done; at += 512) {
      if (at % 4096 === 0 || at > done - 8192) await check(at);
    }
  });
}

describe('a truncated streamOptimized VMDK from a pipe', () => {
  checkCuts('ESXi/ovftool sample (footer and end marker)', () => readFileSync(realWorld('esxi-ovftool-streamoptimized.vmdk')), 60);
  checkCuts('qemu-img sample (tables before the grains)', () => readFileSync(join(FIXTURES, 'qemu-stream.vmdk')), 60);
  checkCuts('our own writer', () => ourStream(), 40);
});

describeOracle('a qemu-img stream that ends right after its last grain', () => {
  checkCuts('qemu-img, no end marker', () => {
    const dir = workDir('stream-truncation');
    const raw = join(dir, 'd.raw');
    const disk = new Uint8Array(4 * 1024 * 1024);
    for (let at = 0; at < disk.length; at += 1024 * 1024) disk.set(pseudoRandom(70_000, at + 1), at + 12288);
    execFileSync('sh', ['-c', `cat > ${raw}`], { input: disk });
    const out = join(dir, 's.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, out]);
    return readFileSync(out);
  }, 40);
});

let own: Uint8Array | undefined;
function ourStream(): Uint8Array {
  if (!own) throw new Error('built in beforeAll');
  return own;
}

beforeAll(async () => {
  const disk = new Uint8Array(3 * 1024 * 1024);
  disk.set(pseudoRandom(200_000, 3), 100_000);
  disk.set(pseudoRandom(50_000, 4), 2 * 1024 * 1024 + 7);
  const sink = new BufferSink();
  const w = await vmdkDriver.create!(sink, { virtualSize: disk.length, options: { subformat: 'streamOptimized' }, file: 'x.vmdk' });
  await copyImage(new RawReader(new BufferSource(disk), disk.length, undefined), w);
  await w.finish();
  own = sink.bytes().slice();
});

describe('from the CLI, on stdin', () => {
  const dir = workDir('stream-truncation-cli');
  for (const [name, load, cut] of [
    ['ESXi sample cut at 64 KiB', () => readFileSync(realWorld('esxi-ovftool-streamoptimized.vmdk')), 65536],
    ['qemu-img sample cut after its second grain', () => readFileSync(join(FIXTURES, 'qemu-stream.vmdk')), 66560],
  ] as const) {
    it(`${name}: exit 1, one line saying where the stream ends`, () => {
      const r = guestkit(['convert', '-O', 'raw', '-', join(dir, 'out.raw')], { input: Buffer.from(load().subarray(0, cut)) });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`<stdin>: stream ends at ${cut} bytes`));
    });
  }
});
