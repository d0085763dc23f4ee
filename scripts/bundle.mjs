// Bundles the CLI. Node's ESM loader resolves and compiles each of our ~100 modules (and zod's)
// separately; bundling halves the startup of `guestkit convert` (0.68 s → 0.33 s on a loaded
// 2-core machine), and splitting at the commands' dynamic imports halves it again (0.30 s →
// 0.15 s for a tiny convert): a command loads only its own chunk. The library (dist/index.js)
// stays unbundled. Zod is imported as a namespace (`import * as z`) so esbuild can drop what we
// do not use (its locales): 750 KB of zod in the shared chunk became 200 KB, ~50 ms of start-up.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

// Chunk names carry content hashes: clear the old ones so a rebuild leaves no stale files behind.
rmSync('dist/cli/bundle', { recursive: true, force: true });

await build({
  entryPoints: ['src/cli/run.ts'],
  outdir: 'dist/cli/bundle',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __guestkitRequire } from 'node:module'; const require = __guestkitRequire(import.meta.url);" },
});

// npx runs the root package's bin directly: it must be executable in a fresh clone.
import { chmodSync } from 'node:fs';
chmodSync('dist/cli/bin.js', 0o755);
