/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX checksums its headers, region
 * tables and log entries (MS-VHDX 2.2.2: computed over the structure with its checksum field zero).
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
