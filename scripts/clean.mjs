// `npm run build` and `npm pack` start from an empty dist/: tsc never deletes the output of a
// source file that was renamed or removed, and a stale module would otherwise be published.
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
