// Bundles the CLI, and builds the CommonJS copy of the library (see the end of this file).
//
// The CLI: Node's ESM loader resolves and compiles each of our ~100 modules (and zod's)
// separately; bundling halves the startup of `guestkit convert` (0.68 s → 0.33 s on a loaded
// 2-core machine), and splitting at the commands' dynamic imports halves it again (0.30 s →
// 0.15 s for a tiny convert): a command loads only its own chunk. The library (dist/index.js)
// stays unbundled. Zod is imported as a namespace (`import * as z`) so esbuild can drop what we
// do not use (its locales): 750 KB of zod in the shared chunk became 200 KB, ~50 ms of start-up.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

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
chmodSync('dist/cli/bin.js', 0o755);

// The library for require(): one CommonJS bundle of src/index.ts in dist/cjs/, with the
// dependencies left as require() calls (each ships a CommonJS entry). Node < 20.19 cannot
// require() an ES module at all, and TypeScript consumers compiling to CommonJS with
// `moduleResolution: node16` reject ESM-only types, so `require('guestkit')` gets real CommonJS
// and its own copy of the declarations. The declarations are the ones tsc emitted for dist/
// (built before this script runs), copied unchanged: dist/cjs/package.json says
// "type": "commonjs", which is all that tells TypeScript to read them as CommonJS.
// One caveat, shared by every dual package: a process that both imports and requires guestkit
// loads two copies, and `instanceof` does not cross them (GuestkitError's `code` does).
rmSync('dist/cjs', { recursive: true, force: true });
mkdirSync('dist/cjs', { recursive: true });
// Only declarations, and not the CLI's: dist/cjs is the library.
for (const file of readdirSync('dist', { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.d.ts') || /^(cli|cjs)\//.test(file)) continue;
  mkdirSync(dirname(join('dist/cjs', file)), { recursive: true });
  copyFileSync(join('dist', file), join('dist/cjs', file));
}
writeFileSync('dist/cjs/package.json', `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
await build({
  entryPoints: ['src/index.ts'],
  outfile: 'dist/cjs/index.js',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  // The package ships src/, so the map points at the real files instead of embedding copies.
  sourcemap: true,
  sourcesContent: false,
  logLevel: 'warning',
});
