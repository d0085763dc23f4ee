/**
 * One extent of a VMDK disk: a run of the virtual disk stored in one file (or nowhere, for ZERO).
 * Each kind answers the MappedReader question "what backs the extent range starting here?"; the
 * disk reader (reader.ts) concatenates extents in descriptor order (docs/FORMATS.md §3.2).
 */
import type { ByteSource } from '../../stream/source.js';
import type { Mapping } from '../shared/mapped-reader.js';
import { SECTOR } from './layout.js';

export interface ExtentInfo {
  /** File holding the extent (display name), absent for ZERO. */
  filename?: string;
  /** Descriptor type (FLAT, SPARSE, …); empty for the extent of a file opened directly, as qemu-img shows it. */
  format: string;
  virtualSize: number;
  clusterSize?: number;
  compressed?: boolean;
}

export interface ExtentReader {
  /** Bytes of virtual disk the extent covers. */
  readonly length: number;
  /** Where the extent's data lives (undefined for ZERO). */
  readonly source: ByteSource | undefined;
  /** `offset` is relative to the extent start; 0 < maxLength ≤ length − offset. */
  lookup(offset: number, maxLength: number): Promise<Mapping>;
  info(): ExtentInfo;
  /** Non-fatal observations made while opening. */
  readonly warnings: readonly string[];
}

/** FLAT / VMFS: raw bytes at (OFFSET + s) × 512 of the file (§3.6). */
export class FlatExtent implements ExtentReader {
  readonly warnings: string[] = [];
  private readonly base: number;
  /** Bytes of the extent actually present in the file; QEMU reads the rest as zeros. */
  private readonly present: number;

  constructor(
    readonly source: ByteSource,
    readonly length: number,
    offsetSectors: number,
    private readonly type: string,
  ) {
    this.base = offsetSectors * SECTOR;
    const size = source.size ?? Infinity;
    this.present = Math.max(0, Math.min(length, size - this.base));
    if (this.present < length) {
      this.warnings.push(`flat extent ${source.name} holds ${this.present} of its ${length} bytes; the rest reads as zeros`);
    }
  }

  async lookup(offset: number, maxLength: number): Promise<Mapping> {
    if (offset >= this.present) return { kind: 'zero', length: maxLength };
    return { kind: 'data', length: Math.min(maxLength, this.present - offset), hostOffset: this.base + offset };
  }

  info(): ExtentInfo {
    return { filename: this.source.name, format: this.type, virtualSize: this.length };
  }
}

/** ZERO: reads as zeros, stored nowhere. */
export class ZeroExtent implements ExtentReader {
  readonly warnings: string[] = [];
  readonly source = undefined;
  constructor(readonly length: number) {}

  async lookup(_offset: number, maxLength: number): Promise<Mapping> {
    return { kind: 'zero', length: maxLength };
  }

  info(): ExtentInfo {
    return { format: 'ZERO', virtualSize: this.length };
  }
}
