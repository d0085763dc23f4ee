/**
 * An OVA opened in place: the tar is listed once, the OVF descriptor parsed, the manifest read,
 * and each disk opened as a byte range of the OVA through the ordinary format readers.
 */
import { createHash } from 'node:crypto';
import { CorruptImageError, GuestkitError, UnsupportedFeatureError, UsageError } from '../errors.js';
import { FileSource, type ByteSource } from '../stream/source.js';
import type { DiskOpeners } from './openers.js';
import { gunzipped } from './gunzip.js';
import type { ImageReader } from '../formats/types.js';
import { listTar, type TarMember } from './tar.js';
import { MAX_OVF_BYTES, parseOvf, type OvfModel } from './ovf.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ManifestEntry } from './manifest.js';
import { RangeSource } from './range-source.js';
import { ConcatSource } from './concat-source.js';

/** ovftool names chunks with nine digits. */
const CHUNK_SUFFIX = /^\.\d{9}$/;

export interface OvaDisk {
  /** 0-based index in the DiskSection. */
  index: number;
  id: string;
  /** The member names that hold it (several when chunked). */
  members: string[];
  href: string | undefined;
  capacity: number;
  populatedSize?: number;
  format?: string;
  subformat?: string;
  compression?: string;
  /** Size of its bytes in the OVA. */
  storedSize: number;
  /** Virtual system and controller/unit it is attached to, when the OVF says. */
  system?: string;
  controller?: string;
  controllerKind?: string;
  unit?: number;
}

export interface OvaInfo {
  file: string;
  descriptor: string;
  manifest?: string;
  certificate?: string;
  members: { name: string; size: number }[];
  ovf: OvfModel;
  disks: OvaDisk[];
}

const decoder = new TextDecoder('utf-8', { fatal: false });

export class Ova {
  private constructor(
    private readonly source: ByteSource,
    readonly info: OvaInfo,
    private readonly byName: Map<string, TarMember>,
    readonly manifest: ManifestEntry[],
  ) {}

  static async open(path: string, name = path): Promise<Ova> {
    const source = await FileSource.open(path, name);
    try {
      return await Ova.fromSource(source);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  static async fromSource(source: ByteSource): Promise<Ova> {
    if (!source.seekable) throw new UnsupportedFeatureError('an OVA read in place needs a seekable file', { file: source.name });
    const file = source.name;
    const members = await listTar(source);
    const byName = new Map(members.map((m) => [m.name, m]));
    // DSP0243 §5.3: the descriptor is the first member; we accept the first .ovf anywhere.
    const desc = members.find((m) => /\.ovf$/i.test(m.name));
    if (!desc) throw new CorruptImageError('OVA has no .ovf descriptor', { file, field: 'descriptor' });
    if (desc.size > MAX_OVF_BYTES) throw new CorruptImageError(`OVF descriptor ${desc.name} is larger than ${MAX_OVF_BYTES} bytes`, { file, field: desc.name });
    const ovf = parseOvf(decoder.decode(await source.read(desc.offset, desc.size)), `${file}:${desc.name}`);
    const mf = members.find((m) => /\.mf$/i.test(m.name));
    let manifest: ManifestEntry[] = [];
    if (mf) {
      if (mf.size > MAX_MANIFEST_BYTES) throw new CorruptImageError(`manifest ${mf.name} is too large`, { file, field: mf.name });
      manifest = parseManifest(decoder.decode(await source.read(mf.offset, mf.size)), `${file}:${mf.name}`);
    }
    const cert = members.find((m) => /\.cert$/i.test(m.name));
    const disks = ovf.disks.map((d, index): OvaDisk => {
      const ref = d.fileRef !== undefined ? ovf.files.find((f) => f.id === d.fileRef) : undefined;
      let names: string[] = [];
      if (ref) {
        if (byName.has(ref.href)) names = [ref.href];
        else names = members.filter((m) => m.name.startsWith(ref.href) && CHUNK_SUFFIX.test(m.name.slice(ref.href.length))).map((m) => m.name).sort();
      }
      const att = ovf.systems.flatMap((s) => s.disks.map((a) => ({ s, a }))).find(({ a }) => a.diskId === d.id);
      return {
        index,
        id: d.id,
        members: names,
        href: ref?.href,
        capacity: d.capacity,
        populatedSize: d.populatedSize,
        format: d.format,
        subformat: d.subformat,
        compression: ref?.compression,
        storedSize: names.reduce((n, m) => n + byName.get(m)!.size, 0),
        system: att?.s.name,
        controller: att?.a.controller,
        controllerKind: att?.a.controllerKind,
        unit: att?.a.unit,
      };
    });
    const info: OvaInfo = {
      file,
      descriptor: desc.name,
      manifest: mf?.name,
      certificate: cert?.name,
      members: members.map((m) => ({ name: m.name, size: m.size })),
      ovf,
      disks,
    };
    return new Ova(source, info, byName, manifest);
  }

  /** A disk by 0-based index (as a number or digits) or by its OVF disk id or file name. */
  disk(sel: number | string | undefined): OvaDisk {
    const { disks } = this.info;
    if (disks.length === 0) throw new UsageError('the OVA describes no disks', { file: this.info.file });
    if (sel === undefined) {
      if (disks.length > 1) throw new UsageError(`the OVA has ${disks.length} disks (${disks.map((d) => d.id).join(', ')}); pick one with --disk N|NAME`, { file: this.info.file });
      return disks[0]!;
    }
    const byIndex = typeof sel === 'number' ? sel : /^\d+$/.test(sel) ? Number(sel) : undefined;
    const d = byIndex !== undefined ? disks[byIndex] : disks.find((x) => x.id === sel || x.href === sel);
    if (!d) throw new UsageError(`no disk ${JSON.stringify(sel)} in the OVA (disks: ${disks.map((x, i) => `${i}=${x.id}`).join(', ')})`, { file: this.info.file });
    return d;
  }

  /** The disk's stored bytes as a source: one member, or its chunks joined. */
  diskSource(d: OvaDisk): ByteSource {
    const file = this.info.file;
    if (d.members.length === 0) throw new CorruptImageError(`disk ${d.id}: its file ${d.href ?? '(no fileRef)'} is not in the OVA`, { file, field: d.id });
    if (d.compression && d.compression !== 'identity' && d.compression !== 'gzip') {
      throw new UnsupportedFeatureError(`disk ${d.id}: ovf:compression="${d.compression}" is not supported (only gzip)`, { file, field: 'compression' });
    }
    const parts = d.members.map((n) => {
      const m = this.byName.get(n)!;
      return new RangeSource(this.source, m.offset, m.size, `${file}:${n}`);
    });
    return parts.length === 1 ? parts[0]! : new ConcatSource(parts, `${file}:${d.href}`);
  }

  /**
   * Checks one member against the manifest; a mismatch names the member. Members the manifest
   * does not list return false. Reads the whole member once.
   */
  async verifyMember(name: string): Promise<boolean> {
    const entry = this.manifest.find((e) => e.file === name);
    const m = this.byName.get(name);
    if (!entry || !m) return false;
    const h = createHash(entry.algorithm);
    const chunk = 1 << 20;
    const buf = new Uint8Array(chunk);
    for (let at = 0; at < m.size; at += chunk) h.update(await this.source.read(m.offset + at, Math.min(chunk, m.size - at), buf));
    const got = h.digest('hex');
    if (got !== entry.digest) {
      throw new CorruptImageError(`manifest ${entry.algorithm.toUpperCase()} mismatch for ${name}: manifest says ${entry.digest}, member is ${got}`, { file: this.info.file, field: name });
    }
    return true;
  }

  /** Opens a disk with the format its OVF names (or detected), as a byte range of the OVA. */
  async openDisk(sel: number | string | undefined, openers: DiskOpeners, opts: { verify?: boolean } = {}): Promise<ImageReader> {
    const d = this.disk(sel);
    const src = this.diskSource(d);
    if (opts.verify) for (const n of d.members) await this.verifyMember(n);
    try {
      if (d.compression === 'gzip') return await openers.openPipe(gunzipped(src, src.size ?? 0, src.name), { format: d.format });
      return await openers.openSource(src, { format: d.format });
    } catch (e) {
      if (e instanceof GuestkitError && !(e instanceof UsageError)) {
        throw new CorruptImageError(`disk ${d.id} (${d.members.join(', ')}) is not a readable ${d.format ?? 'disk'} image: ${e.detail}`, { file: this.info.file, field: d.id, cause: e });
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

/**
 * A ustar/GNU/pax tar whose first member is (or whose first long name or pax path names) an .ovf
 * descriptor, as DSP0243 §5.3 requires of an OVA, or a manifest, certificate or VMDK (an OVA
 * written out of order, which a file can still be read from). Plain tars are not claimed.
 */
const OVA_FIRST = /\.(ovf|mf|cert|vmdk)$/i;

export function looksLikeOva(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  if (decoder.decode(head.subarray(257, 262)) !== 'ustar') return false;
  const type = head[156];
  const name = decoder.decode(head.subarray(0, 100)).replace(/\0.*$/s, '');
  if (type === 0x4c /* L */ || type === 0x78 /* x */) {
    return OVA_FIRST.test(name) || /\.(ovf|mf|cert|vmdk)(\0|\n|$)/im.test(decoder.decode(head.subarray(512, Math.min(head.length, 2048))));
  }
  return OVA_FIRST.test(name);
}
