/**
 * Finds the partition table of a disk: GPT behind a protective (or hybrid) MBR, else MBR, else
 * none. The logical sector size is 512 unless the GPT header sits at LBA 1 of 4096-byte sectors.
 */
import type { BlockView } from '../view.js';
import { gptSignatureAt, readGpt } from './gpt.js';
import { hex8, looksLikeMbr, readMbr } from './mbr.js';
import type { PartitionTable } from './table.js';
import { MBR_GPT_PROTECTIVE } from './types.js';

export type { Partition, PartitionTable } from './table.js';
export { MBR_TYPES, GPT_TYPES, GPT_TYPE, mbrTypeName, gptTypeName } from './types.js';

/** The table of `disk`, or undefined when it has none (a filesystem on the whole disk, or blank). Damaged tables throw typed errors. */
export async function readPartitionTable(disk: BlockView): Promise<PartitionTable | undefined> {
  if (disk.size < 512) return undefined;
  const sector0 = await disk.read(0, 512);
  if (!looksLikeMbr(sector0)) return undefined;
  const sectorSize = (await gptSignatureAt(disk, 512)) ? 512 : (await gptSignatureAt(disk, 4096)) ? 4096 : 512;
  const mbr = await readMbr(disk, sectorSize);
  if (mbr.protective) {
    const gpt = await readGpt(disk, sectorSize);
    const others = mbr.partitions.filter((p) => p.mbrType !== MBR_GPT_PROTECTIVE);
    return {
      scheme: 'gpt',
      sectorSize,
      diskId: gpt.header.diskGuid,
      partitions: gpt.partitions,
      ...(others.length ? { hybridMbr: others } : {}),
      firstUsableLba: gpt.header.firstUsableLba,
      lastUsableLba: gpt.header.lastUsableLba,
      warnings: others.length ? [...gpt.warnings, `hybrid MBR: the MBR also lists ${others.map((p) => `${p.typeName} at sector ${p.start / sectorSize}`).join(', ')}; the GPT is used`] : gpt.warnings,
    };
  }
  return { scheme: 'mbr', sectorSize, diskId: `0x${hex8(mbr.diskSignature)}`, partitions: mbr.partitions, warnings: [] };
}
