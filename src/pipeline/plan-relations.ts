/**
 * The checks that relate disks to each other (and, for `pipeline validate`, to the machine):
 * ids are unique (they key the resume state); no two disks write the same file; no disk reads
 * a file another writes (disks run in parallel, so such a chain would race). Files are compared
 * by what they are, not how they are written: `out/x.raw` and `outlink/x.raw` through a
 * symlinked folder, or two hard links, are one file (stream/file-identity.ts).
 *
 * Memory: three CompactIndex tables, 40–80 bytes a disk each, whatever the length of the paths.
 */
import { CompactIndex } from './compact-index.js';
import { copyDestination } from './copy-destination.js';
import { FileChecks } from './plan-files.js';
import { PathIdentities } from '../stream/file-identity.js';
import type { ResolvedDisk } from './resolve.js';

/** Reports an issue at `disks[index]<field>`. */
export type IssueSink = (index: number, field: string, message: string, line?: number) => void;

export class PlanRelations {
  private readonly ids = new CompactIndex();
  private readonly written = new CompactIndex();
  private readonly read = new CompactIndex();
  private readonly paths = new PathIdentities();
  private readonly files?: FileChecks;

  /** `files`: also report missing or unreadable sources and output folders that cannot be written. */
  constructor(opts: { files?: boolean } = {}) {
    if (opts.files) this.files = new FileChecks(this.paths);
  }

  /** Bytes held by the tables (reported by the memory test). */
  get bytes(): number {
    return this.ids.bytes + this.written.bytes + this.read.bytes;
  }

  check(d: ResolvedDisk, issue: IssueSink): void {
    const here = (field: string, message: string) => issue(d.index, field, message, d.line);
    const firstId = this.ids.setIfAbsent(d.id, d.index);
    if (firstId !== undefined) here('.id', `id '${d.id}' is already used by disks[${firstId}]; give each disk its own id`);

    const source = this.paths.identify(d.source);
    const sourceProblem = this.files?.source(d.source, source);
    if (sourceProblem) here('.source', sourceProblem);
    const sourceDigest = CompactIndex.digest(source.key);
    const writer = this.written.get(sourceDigest);
    if (writer !== undefined) here('.source', `is written by disks[${writer}]; disks run in parallel, so split this into two plans`);
    this.read.setIfAbsent(sourceDigest, d.index);

    const targets: Array<[string, string]> = d.output ? [[d.output, '.output']] : [];
    d.stages.forEach((s, k) => {
      if (s.type === 'copy-to') targets.push([copyDestination(d, s.dir), `.stages[${k}]`]);
    });
    for (const [file, field] of targets) {
      const target = this.paths.identify(file);
      if (target.key === source.key) {
        here(field, `${file} is the same file as the source`);
        continue;
      }
      const folderProblem = this.files?.outputFolder(file);
      if (folderProblem) here(field, folderProblem);
      const digest = CompactIndex.digest(target.key);
      const other = this.written.setIfAbsent(digest, d.index);
      if (other !== undefined) {
        here(field, `writes ${file}, which disks[${other}] writes too${other === d.index ? ' (through another stage)' : ''}`);
        continue;
      }
      const reader = this.read.get(digest);
      if (reader !== undefined && reader !== d.index) issue(reader, '.source', `is written by disks[${d.index}]; disks run in parallel, so split this into two plans`);
    }
  }
}
