/**
 * A VMDK disk read from random-access files: its extents concatenated in descriptor order
 * (docs/FORMATS.md §3.2), unallocated grains falling through to the parent of a delta link. All the
 * reading, coalescing and map merging is MappedReader's; this class only routes a virtual offset
 * to the extent that holds it.
 */
import { CorruptImageError } from '../../errors.js';
import type { ByteSource } from '../../stream/source.js';
import { MappedReader, type Mapping } from '../shared/mapped-reader.js';
import type { Extent, FormatInfo, ImageReader } from '../types.js';
import type { ExtentReader } from './extent.js';
import { diskInfo, type DiskMeta } from './info.js';

export interface DiskPart {
  /** Virtual byte offset where the extent starts. */
  start: number;
  extent: ExtentReader;
}

export class VmdkReader extends MappedReader {
  readonly format = 'vmdk';
  private last = 0;

  constructor(
    source: ByteSource,
    private readonly parts: DiskPart[],
    private readonly meta: Omit<DiskMeta, 'extents'>,
    /** Sources opened for extents (closed with the reader; the main source is closed by MappedReader). */
    private readonly extentSources: ByteSource[],
    private readonly paths: string[],
    backing?: ImageReader,
  ) {
    super(source, parts.length ? parts[parts.length - 1].start + parts[parts.length - 1].extent.length : 0, backing);
  }

  /** The part holding `offset`: the last one used (sequential reads), else a binary search. */
  private partAt(offset: number): DiskPart {
    const p = this.parts[this.last];
    if (p && offset >= p.start && offset < p.start + p.extent.length) return p;
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.parts[mid].start <= offset) lo = mid;
      else hi = mid - 1;
    }
    this.last = lo;
    return this.parts[lo];
  }

  protected async map(offset: number, maxLength: number): Promise<Mapping> {
    const part = this.partAt(offset);
    const room = part.start + part.extent.length - offset;
    const m = await part.extent.lookup(offset - part.start, Math.min(maxLength, room));
    const src = part.extent.source;
    return m.kind === 'data' && src && src !== this.source ? { ...m, source: src } : m;
  }

  /** The extents in disk order, with where each starts (for check). */
  get layout(): readonly DiskPart[] {
    return this.parts;
  }

  info(): FormatInfo {
    const warnings = [...this.meta.warnings, ...this.parts.flatMap((p) => p.extent.warnings)];
    return diskInfo({ ...this.meta, warnings, extents: this.parts.map((p) => p.extent.info()) }, this.virtualSize, this.backing);
  }

  files(): string[] {
    return [...this.paths, ...(this.backing?.files() ?? [])];
  }

  /** Closes the extent files this reader opened, leaving the main source to its owner. */
  async closeExtents(): Promise<void> {
    await Promise.all(this.extentSources.map((s) => s.close()));
    await this.backing?.close();
  }

  override async close(): Promise<void> {
    await Promise.all(this.extentSources.map((s) => s.close()));
    await super.close();
  }
}

/**
 * The parent of a delta link, checked the way QEMU checks it: when a read first falls through to
 * the parent, the parent's CID must equal the child's parentCID (docs/FORMATS.md §3.7), otherwise the
 * parent changed after the child was made and its data would be wrong. Maps are not checked, as
 * qemu-img map does not check them either.
 */
export class CidCheckedParent implements ImageReader {
  readonly format: string;
  readonly virtualSize: number;
  private verified = false;

  constructor(
    private readonly parent: ImageReader,
    private readonly expectedCid: number,
    private readonly child: string,
  ) {
    this.format = parent.format;
    this.virtualSize = parent.virtualSize;
  }

  private check(): void {
    if (this.verified) return;
    const cid = this.parent.info().formatSpecific?.cid;
    if (cid !== this.expectedCid) {
      const hex = (n: unknown) => (typeof n === 'number' ? n.toString(16).padStart(8, '0') : String(n));
      throw new CorruptImageError(
        `parent CID ${hex(cid)} does not match the parentCID ${hex(this.expectedCid)} this delta was made against: the parent changed since`,
        { file: this.child, field: 'parentCID' },
      );
    }
    this.verified = true;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check();
    return this.parent.read(offset, length, into);
  }

  extents(from?: number, to?: number): AsyncIterable<Extent> {
    return this.parent.extents(from, to);
  }

  info(): FormatInfo {
    return this.parent.info();
  }

  files(): string[] {
    return this.parent.files();
  }

  close(): Promise<void> {
    return this.parent.close();
  }
}
