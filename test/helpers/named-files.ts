/**
 * Tiny images whose only point is the files they name: a qcow2 with a backing file and/or an
 * external data file, and a VMDK descriptor with one extent. Built byte by byte (qcow2 spec,
 * "Header"; VMDK 1.1 "Extent descriptions") so tests can point them at anything: a FIFO, a device,
 * a hard link.
 */
const CLUSTER = 65536;
const EXT_DATA_FILE = 0x44415441;
const INCOMPAT_DATA_FILE = 1n << 2n;

/** A qcow2 v3 of `size` bytes with nothing allocated, naming `backing` and/or `dataFile`. */
export function qcow2Naming(opts: { size?: number; backing?: string; backingFormat?: string; dataFile?: string }): Uint8Array {
  const size = opts.size ?? 1 << 20;
  const out = new Uint8Array(4 * CLUSTER);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x514649fb);
  dv.setUint32(4, 3);
  dv.setUint32(20, 16); // cluster_bits
  dv.setBigUint64(24, BigInt(size));
  dv.setUint32(36, Math.ceil(size / (CLUSTER * (CLUSTER / 8)))); // l1_size
  dv.setBigUint64(40, BigInt(3 * CLUSTER)); // l1_table_offset
  dv.setBigUint64(48, BigInt(CLUSTER)); // refcount_table_offset
  dv.setUint32(56, 1); // refcount_table_clusters
  if (opts.dataFile !== undefined) dv.setBigUint64(72, INCOMPAT_DATA_FILE);
  dv.setUint32(96, 4); // refcount_order: 16-bit refcounts
  dv.setUint32(100, 104); // header_length
  let at = 104;
  const ext = (type: number, text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    dv.setUint32(at, type);
    dv.setUint32(at + 4, bytes.length);
    out.set(bytes, at + 8);
    at += 8 + Math.ceil(bytes.length / 8) * 8;
  };
  if (opts.backingFormat !== undefined) ext(0xe2792aca, opts.backingFormat);
  if (opts.dataFile !== undefined) ext(EXT_DATA_FILE, opts.dataFile);
  at += 8; // end of extensions
  if (opts.backing !== undefined) {
    const name = Buffer.from(opts.backing, 'utf8');
    dv.setBigUint64(8, BigInt(at));
    dv.setUint32(16, name.length);
    out.set(name, at);
  }
  dv.setBigUint64(CLUSTER, BigInt(2 * CLUSTER)); // refcount table → one refcount block
  for (let c = 0; c < 4; c++) dv.setUint16(2 * CLUSTER + c * 2, 1);
  return out;
}

/** A monolithicFlat VMDK descriptor whose one extent of `sectors` is the file `extent`. */
export function vmdkNaming(extent: string, sectors = 2048, type: 'FLAT' | 'SPARSE' = 'FLAT'): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'CID=12345678',
    'parentCID=ffffffff',
    `createType="${type === 'FLAT' ? 'monolithicFlat' : 'twoGbMaxExtentSparse'}"`,
    '',
    '# Extent description',
    `RW ${sectors} ${type} "${extent}"${type === 'FLAT' ? ' 0' : ''}`,
    '',
  ].join('\n');
}
