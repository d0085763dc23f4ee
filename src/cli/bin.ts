#!/usr/bin/env node
/**
 * Entry point. `--version` is answered without loading anything else; every other command runs
 * from the bundled CLI (scripts/bundle.mjs) when it was built, else from the compiled modules.
 */
import { existsSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`${pkg.version}\n`);
} else {
  const bundle = new URL('./bundle/run.mjs', import.meta.url);
  await import(existsSync(bundle) ? bundle.href : './run.js');
}
