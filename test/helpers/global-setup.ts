/**
 * Builds dist/ once before any test runs, so CLI tests always spawn the CLI compiled from the
 * current sources — never a stale build — whether tests start through `npm test` or `npx vitest`.
 * Type errors do not stop the emit (CI's separate type check fails on them).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`global-setup: tsc reported problems (dist/ emitted anyway):\n${r.stdout}${r.stderr}`);
}
