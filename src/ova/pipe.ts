/**
 * An OVA arriving on a pipe (`curl … | guestkit convert - out.qcow2`): one forward pass. The
 * descriptor must come before the disk (DSP0243 §5.3 puts it first; ovftool and VirtualBox do),
 * and the disk must be a format read in one pass (streamOptimized VMDK, as exporters write).
 * The manifest is not checked here: it may follow the disks, and checking it would need the disk's
 * bytes twice.
 */
import { UnsupportedFeatureError, UsageError } from '../errors.js';
import type { DiskOpeners } from './openers.js';
import { gunzipped } from './gunzip.js';
import { byName } from '../formats/registry.js';
import { probeWith } from '../formats/detect.js';
import type { ImageReader } from '../formats/types.js';
import type { ByteSource } from '../stream/source.js';
import { MAX_OVF_BYTES, parseOvf, type OvfModel } from './ovf.js';
import { RangeSource } from './range-source.js';
import { walkTar } from './tar.js';

const decoder = new TextDecoder();
/** As much of a member as detection looks at (formats/detect.ts reads a 64 KiB head). */
const HEAD_BYTES = 64 * 1024;

export async function openOvaPipe(pipe: ByteSource, disk: string | undefined, openers: DiskOpeners): Promise<ImageReader> {
  const file = pipe.name;
  let ovf: OvfModel | undefined;
  let href: string | undefined;
  let gzip = false;
  let want: OvfModel['disks'][number] | undefined;
  for await (const m of walkTar(pipe)) {
    if (!ovf && /\.ovf$/i.test(m.name)) {
      if (m.size > MAX_OVF_BYTES) throw new UnsupportedFeatureError(`OVF descriptor ${m.name} is larger than ${MAX_OVF_BYTES} bytes`, { file });
      ovf = parseOvf(decoder.decode(await pipe.read(m.offset, m.size)), `${file}:${m.name}`);
      const disks = ovf.disks;
      if (disks.length === 0) throw new UsageError('the OVA describes no disks', { file });
      if (disk === undefined && disks.length > 1) throw new UsageError(`the OVA has ${disks.length} disks (${disks.map((d) => d.id).join(', ')}); pick one with --disk N|NAME`, { file });
      const idx = disk === undefined ? 0 : /^\d+$/.test(disk) ? Number(disk) : disks.findIndex((d) => d.id === disk || ovf!.files.find((f) => f.id === d.fileRef)?.href === disk);
      want = disks[idx];
      if (!want) throw new UsageError(`no disk ${JSON.stringify(disk)} in the OVA`, { file });
      const ref = ovf.files.find((f) => f.id === want!.fileRef);
      if (!ref) throw new UsageError(`disk ${want.id} names no file of the OVA`, { file });
      if (ref.chunkSize || (ref.compression && ref.compression !== 'identity' && ref.compression !== 'gzip')) {
        throw new UnsupportedFeatureError(`disk ${want.id} is ${ref.chunkSize ? 'split into chunks' : `${ref.compression}-compressed`}: read from a pipe it is not supported yet; save the OVA to a file`, { file });
      }
      gzip = ref.compression === 'gzip';
      href = ref.href;
      continue;
    }
    if (m.name === href || (!ovf && /\.(vmdk|vhd|vdi|qcow2|img|raw)$/i.test(m.name))) {
      if (!ovf) throw new UnsupportedFeatureError(`disk ${m.name} comes before the OVF descriptor: a pipe cannot go back; save the OVA to a file`, { file, offset: m.header });
      // Inflated forward and opened as a piped image is: in one pass, or spooled (formats/open.ts, openPipe).
      if (gzip) return openers.openPipe(gunzipped(new RangeSource(pipe, m.offset, m.size, `${file}:${m.name}`), m.size, `${file}:${m.name}`), { format: want!.format });
      const src = await HeadKept.open(new RangeSource(pipe, m.offset, m.size, `${file}:${m.name}`));
      const driver = byName(want!.format ?? 'raw');
      const head = { head: src.head, tail: new Uint8Array(0), size: m.size };
      const probed = probeWith(driver, head);
      if (!driver.capabilities.streamRead || (driver.streamReadable && (!probed || !driver.streamReadable(probed)))) {
        throw new UnsupportedFeatureError(`disk ${want!.id} (${m.name}) is a ${driver.name}${probed?.subformat ? ` ${probed.subformat}` : ''} image, which cannot be read in one pass from a pipe; save the OVA to a file`, { file, offset: m.offset });
      }
      return openers.openSource(src, { format: driver.name });
    }
  }
  if (!ovf) throw new UnsupportedFeatureError('the OVA on the pipe has no OVF descriptor', { file });
  throw new UsageError(`disk ${want?.id} (${href}) is not in the OVA`, { file });
}

/**
 * A member on a pipe whose first bytes are kept, as StreamSource keeps the pipe's own head: the
 * probe and then the reader both parse the member's header from its offset 0.
 */
class HeadKept implements ByteSource {
  readonly seekable = false;
  private constructor(
    private readonly inner: RangeSource,
    readonly head: Uint8Array,
  ) {}
  static async open(inner: RangeSource): Promise<HeadKept> {
    return new HeadKept(inner, (await inner.readUpTo(0, HEAD_BYTES)).slice());
  }
  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.inner.size;
  }
  async readUpTo(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = into ? into.subarray(0, n) : new Uint8Array(n);
    const fromHead = Math.max(0, Math.min(n, this.head.length - offset));
    if (fromHead > 0) buf.set(this.head.subarray(offset, offset + fromHead));
    if (fromHead < n) {
      const rest = await this.inner.readUpTo(offset + fromHead, n - fromHead, buf.subarray(fromHead));
      return buf.subarray(0, fromHead + rest.length);
    }
    return buf;
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = await this.readUpTo(offset, length, into);
    if (buf.length !== length) return this.inner.read(offset + buf.length, length - buf.length); // raises the truncation error
    return buf;
  }
  async close(): Promise<void> {}
}
