/**
 * `check` for VDI, the checks qemu-img check makes (vdi_co_check): every allocated block map
 * entry must be below blocks_in_image and used once, and blocks_allocated must equal the number of
 * allocated entries. Each problem counts as one corruption, worded as qemu words it.
 *
 * The map is streamed, not held: which data blocks are taken is one bit each, and the virtual
 * block that took a shared data block first is looked up in a second pass, only for the shared
 * blocks whose message is printed (messages are capped, counts are exact).
 */
import type { ByteSource } from '../../stream/source.js';
import { Bitmap } from '../shared/bitmap.js';
import { isUniform } from '../shared/u32-table.js';
import { MAX_CHECK_MESSAGES, MESSAGES_OMITTED, noteCheckMessage } from '../shared/check-log.js';
import type { CheckResult, OpenContext } from '../types.js';
import { readVdiImage, type VdiImage } from './image.js';
import { isAllocated } from './layout.js';

/** A problem found at `block`: its entry is too large, or shares a data block taken before. */
interface Finding {
  block: number;
  entry: number;
  shared: boolean;
}

export async function checkVdiImage(img: VdiImage, filename: string): Promise<CheckResult> {
  const h = img.header;
  const blocks = h.blocksInImage;
  let corruptions = 0;
  let allocated = 0;
  const taken = new Bitmap(blocks);
  const findings: Finding[] = [];
  await img.map.walk((start, entries) => {
    if (isUniform(entries)) {
      const entry = entries[0];
      if (!isAllocated(entry)) return;
      // Once the listed findings are full, a uniform chunk only adds to the counts.
      if (findings.length >= MAX_CHECK_MESSAGES) {
        if (entry >= blocks) corruptions += entries.length;
        else {
          allocated += entries.length;
          corruptions += taken.get(entry) ? entries.length : entries.length - 1;
          taken.set(entry);
        }
        return;
      }
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (!isAllocated(entry)) continue;
      const block = start + i;
      if (entry >= blocks) {
        corruptions++;
        if (findings.length < MAX_CHECK_MESSAGES) findings.push({ block, entry, shared: false });
        continue;
      }
      allocated++;
      if (!taken.get(entry)) {
        taken.set(entry);
      } else {
        corruptions++;
        if (findings.length < MAX_CHECK_MESSAGES) findings.push({ block, entry, shared: true });
      }
    }
  });
  // Who took each reported shared data block first: the first virtual block whose entry names it.
  const firstOwner = new Map<number, number>();
  for (const f of findings) if (f.shared) firstOwner.set(f.entry, -1);
  if (firstOwner.size) {
    let open = firstOwner.size;
    const lastShared = findings.reduce((m, f) => (f.shared ? Math.max(m, f.block) : m), 0);
    await img.map.walk(
      (start, entries) => {
        if (!open) return;
        for (let i = 0; i < entries.length; i++) {
          if (firstOwner.get(entries[i]) === -1) {
            firstOwner.set(entries[i], start + i);
            open--;
          }
        }
      },
      0,
      lastShared,
    );
  }
  const messages: string[] = [];
  for (const f of findings) {
    noteCheckMessage(
      messages,
      f.shared ? `ERROR: block index ${f.entry} also used by ${f.block} (first used by ${firstOwner.get(f.entry)})` : `ERROR: block index ${f.block} too large, is ${f.entry}`,
    );
  }
  if (corruptions > findings.length && messages.length === MAX_CHECK_MESSAGES) messages.push(MESSAGES_OMITTED);
  if (allocated !== h.blocksAllocated) {
    messages.push(`ERROR: allocated blocks mismatch, is ${allocated}, should be ${h.blocksAllocated}`);
    corruptions++;
  }
  return { filename, format: 'vdi', corruptions, leaks: 0, checkErrors: 0, messages };
}

export async function checkVdi(source: ByteSource, ctx: OpenContext): Promise<CheckResult> {
  return checkVdiImage(await readVdiImage(source, ctx.file), ctx.file);
}
