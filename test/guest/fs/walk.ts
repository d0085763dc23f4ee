/** Walks a guest FileSystem the way the oracle tests compare it: every path, its lstat and listing. */
import type { DirEntry, FileSystem, Stat } from '../../../src/guest/fs/types.js';

export interface WalkedNode {
  path: string;
  stat: Stat;
  entries?: DirEntry[];
}

export async function walk(fs: FileSystem, path = '/', out: WalkedNode[] = []): Promise<WalkedNode[]> {
  const stat = await fs.lstat(path);
  if (stat.type !== 'directory') {
    out.push({ path, stat });
    return out;
  }
  const entries = await fs.readdir(path);
  out.push({ path, stat, entries });
  for (const e of entries) await walk(fs, path === '/' ? `/${e.name}` : `${path}/${e.name}`, out);
  return out;
}
