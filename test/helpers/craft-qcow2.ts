/**
 * Hand-made qcow2 images for hostile-input tests: version 3, 64 KiB clusters, one L2 table whose
 * entries the test chooses. Layout: header | refcount table | refcount block | L1 | L2 | data.
 */
const CS = 64 * 1024;

/** A compressed-cluster L2 entry (cluster_bits 16): `sectors` 512-byte sectors of payload at `offset`. */
export function compressedEntry(offset: number, sectors: number): bigint {
  return (1n << 62n) | (BigInt(sectors - 1) << 54n) | BigInt(offset);
}

export const CRAFT_DATA_OFFSET = 5 * CS;

/** A qcow2 of `size` bytes whose L2 entries are `l2` (index → entry) and whose data cluster holds `data`. */
export function craftQcow2(l2: Map<number, bigint>, data: Uint8Array, size = 8 * 1024 * 1024): Uint8Array {
  const buf = new Uint8Array(6 * CS);
  const v = new DataView(buf.buffer);
  v.setUint32(0, 0x514649fb);
  v.setUint32(4, 3); // version
  v.setUint32(20, 16); // cluster_bits
  v.setBigUint64(24, BigInt(size));
  v.setUint32(36, 1); // l1_size
  v.setBigUint64(40, BigInt(3 * CS)); // l1_table_offset
  v.setBigUint64(48, BigInt(CS)); // refcount_table_offset
  v.setUint32(56, 1); // refcount_table_clusters
  v.setUint32(96, 4); // refcount_order
  v.setUint32(100, 112); // header_length
  v.setBigUint64(CS, BigInt(2 * CS));
  for (let i = 0; i < 6; i++) v.setUint16(2 * CS + 2 * i, 1);
  v.setBigUint64(3 * CS, BigInt(4 * CS) | (1n << 63n));
  for (const [i, e] of l2) v.setBigUint64(4 * CS + 8 * i, e);
  buf.set(data.subarray(0, CS), CRAFT_DATA_OFFSET);
  return buf;
}
