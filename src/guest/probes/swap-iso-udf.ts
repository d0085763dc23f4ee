/** Linux swap, ISO 9660 and UDF, as libblkid's superblocks/swap.c, iso9660.c and udf.c identify them. */
import { cString, dv, isZero, latin1, readAt, rtrim, startsWith, utf16, uuidText } from './bytes.js';
import type { Probe, ProbeHit } from './types.js';

/** The swap signature ends the first page; pages of these sizes exist on the architectures Linux runs on. */
const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];
const SWSUSPEND = ['S1SUSPEND', 'S2SUSPEND', 'ULSUSPEND', '\xed\xc3\x02\xe9\x98\x56\xe5\x0c', 'LINHIB0001'];

export const swapProbe: Probe = {
  name: 'swap',
  async probe(view) {
    for (const page of PAGE_SIZES) {
      const tail = await readAt(view, page - 10, 10);
      if (!tail) return undefined;
      const magic = latin1(tail);
      if (magic === 'SWAP-SPACE') return { score: 100, type: 'swap', usage: 'other', version: '0' };
      const suspend = SWSUSPEND.some((m) => magic.endsWith(m));
      if (magic !== 'SWAPSPACE2' && !suspend) continue;
      const h = await readAt(view, 1024, 44);
      if (!h) return undefined;
      const d = dv(h);
      const version = d.getUint32(0, true);
      const lastPage = d.getUint32(4, true);
      // blkid accepts a header of either byte order (swap made on another architecture).
      if (version !== 1 && d.getUint32(0, false) !== 1) return undefined;
      if (lastPage === 0 && d.getUint32(4, false) === 0) return undefined;
      const hit: ProbeHit = { score: 100, type: suspend ? 'swsuspend' : 'swap', usage: 'other', version: '1', size: (lastPage + 1) * page };
      const uuid = h.subarray(12, 28);
      if (!isZero(uuid)) hit.uuid = uuidText(uuid);
      const label = cString(h.subarray(28, 44));
      if (label) hit.label = label;
      return hit;
    }
    return undefined;
  },
};

const ISO_START = 32768;
const ISO_SECTOR = 2048;
/** Volume descriptors follow one another until the terminator; real discs have a handful. */
const MAX_DESCRIPTORS = 32;

/** "YYYYMMDDHHMMSSCC" of a descriptor date as blkid prints it for UUID: YYYY-MM-DD-HH-MM-SS-CC. */
function isoDate(b: Uint8Array): string | undefined {
  const s = latin1(b.subarray(0, 16));
  if (!/^\d{16}$/.test(s) || /^0+$/.test(s)) return undefined;
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}-${s.slice(8, 10)}-${s.slice(10, 12)}-${s.slice(12, 14)}-${s.slice(14, 16)}`;
}

export const isoProbe: Probe = {
  name: 'iso9660',
  async probe(view) {
    const pvd = await readAt(view, ISO_START, ISO_SECTOR);
    if (!pvd || pvd[0] !== 1 || !startsWith(pvd, 1, 'CD001')) return undefined;
    const d = dv(pvd);
    const blockSize = d.getUint16(128, true);
    const hit: ProbeHit = {
      score: 100,
      type: 'iso9660',
      usage: 'filesystem',
      blockSize,
      size: d.getUint32(80, true) * blockSize,
    };
    const uuid = isoDate(pvd.subarray(813)) ?? isoDate(pvd.subarray(830));
    if (uuid) hit.uuid = uuid;
    let label = rtrim(latin1(pvd.subarray(40, 72)));
    for (let i = 1; i < MAX_DESCRIPTORS; i++) {
      const vd = await readAt(view, ISO_START + i * ISO_SECTOR, ISO_SECTOR);
      if (!vd || !startsWith(vd, 1, 'CD001') || vd[0] === 255) break;
      // A supplementary descriptor with a UCS-2 escape sequence is Joliet; blkid prefers its label.
      if (vd[0] === 2 && vd[88] === 0x25 && vd[89] === 0x2f && [0x40, 0x43, 0x45].includes(vd[90])) {
        const joliet = rtrim(utf16(vd.subarray(40, 72), false));
        if (joliet) label = joliet;
        hit.version = 'Joliet Extension';
        break;
      }
    }
    if (label) hit.label = label;
    return hit;
  },
};

const UDF_VRS_IDS = new Set(['NSR02', 'NSR03']);

export const udfProbe: Probe = {
  name: 'udf',
  async probe(view) {
    // The volume recognition sequence starts at 32 KiB: BEA01, then NSR02/NSR03, each in its own 2 KiB (or larger) sector.
    for (const stride of [2048, 4096, 8192, 16384, 32768]) {
      let sawBea = false;
      for (let i = 0; i < 16; i++) {
        const b = await readAt(view, ISO_START + i * stride, 6);
        if (!b) break;
        const id = latin1(b.subarray(1, 6));
        if (id === 'BEA01') sawBea = true;
        else if (sawBea && UDF_VRS_IDS.has(id)) return { score: 100, type: 'udf', usage: 'filesystem' };
        else if (!['CD001', 'CDW02', 'BOOT2', 'TEA01'].includes(id)) break;
      }
    }
    return undefined;
  },
};
