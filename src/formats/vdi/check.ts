/**
 * `check` for VDI, the checks qemu-img check makes (vdi_co_check): every allocated block map
 * entry must be below blocks_in_image and used once, and blocks_allocated must equal the number of
 * allocated entries. Each problem counts as one corruption, worded as qemu words it.
 */
import type { ByteSource } from '../../stream/source.js';
import type { CheckResult, OpenContext } from '../types.js';
import { readVdiImage, type VdiImage } from './image.js';
import { isAllocated } from './layout.js';

const NO_OWNER = 0xffff_ffff;

export function checkVdiImage(img: VdiImage, filename: string): CheckResult {
  const h = img.header;
  const messages: string[] = [];
  let corruptions = 0;
  let allocated = 0;
  // Which virtual block took each data-area block first (the same size as the map, already in memory).
  const owner = new Uint32Array(h.blocksInImage).fill(NO_OWNER);
  for (let block = 0; block < img.map.length; block++) {
    const entry = img.map[block];
    if (!isAllocated(entry)) continue;
    if (entry >= h.blocksInImage) {
      messages.push(`ERROR: block index ${block} too large, is ${entry}`);
      corruptions++;
      continue;
    }
    allocated++;
    if (owner[entry] === NO_OWNER) {
      owner[entry] = block;
    } else {
      messages.push(`ERROR: block index ${entry} also used by ${block} (first used by ${owner[entry]})`);
      corruptions++;
    }
  }
  if (allocated !== h.blocksAllocated) {
    messages.push(`ERROR: allocated blocks mismatch, is ${allocated}, should be ${h.blocksAllocated}`);
    corruptions++;
  }
  return { filename, format: 'vdi', corruptions, leaks: 0, checkErrors: 0, messages };
}

export async function checkVdi(source: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  return checkVdiImage(await readVdiImage(source, ctx.file), ctx.file);
}
