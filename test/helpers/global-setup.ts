/**
 * Builds dist/ before the tests when the sources are newer than the last build, so CLI tests
 * always spawn the CLI compiled from the current sources — whether tests start through `npm test`
 * or `npx vitest` — without rewriting dist/ under a concurrent test run for nothing.
 * Type errors do not stop the emit (CI's separate type check fails on them).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const stamp = join(root, 'dist', '.build-stamp');
  const built = (() => {
    try {
      return statSync(stamp).mtimeMs;
    } catch {
      return 0;
    }
  })();
  if (built > Math.max(newest(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs)) return;
  const r = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`global-setup: tsc reported problems (dist/ emitted anyway):\n${r.stdout}${r.stderr}`);
  const b = spawnSync(process.execPath, [`${root}scripts/bundle.mjs`], { cwd: root, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`global-setup: bundling the CLI failed:\n${b.stdout}${b.stderr}`);
  if (r.status === 0) writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
