/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): VHDX checksums its headers, region
 * tables and log entries with it (MS-VHDX 2.2.2: computed over the structure with its checksum
 * field zero), and ext4's metadata_csum uses its raw register form (crc32cRaw).
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data`; `skip` names a 4-byte field (the checksum itself) that counts as zeros. */
export function crc32c(data: Uint8Array, skip?: number): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    const b = skip !== undefined && i >= skip && i < skip + 4 ? 0 : data[i];
    c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The raw register form, as ext4's metadata_csum uses it: the kernel's crc32c() takes and returns
 * the register with no pre- or post-inversion, and ext4 seeds it with ~0 (fs/ext4/ext4.h ext4_chksum).
 */
export function crc32cRaw(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** crc32cRaw over a little-endian 32-bit value (inode numbers and generations in ext4 seeds). */
export function crc32cU32(crc: number, value: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return crc32cRaw(crc, b);
}
