/**
 * The package as npm users get it: `npm pack` (which builds through `prepare`, as `npm publish`
 * does), then the tarball installed into a fresh CommonJS project and a fresh ESM project, each
 * running the library, the installed `guestkit` bin, and a TypeScript type check of a consumer.
 *
 * The build runs in a copy of the package's sources, never in this checkout: rebuilding dist/
 * here would pull the CLI out from under CLI tests running beside this one.
 * The consumers install with `npm ci --offline` from a lockfile pinned to this repository's
 * locked dependency versions, so the tarballs come from npm's cache (filled by this checkout's
 * own `npm ci`) and no registry is needed; only if the cache lacks one does npm go online.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
  dependencies: Record<string, string>;
};

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  [k: string]: unknown;
}

let work: string;
let tarball: string;
let packedFiles: string[];
let tarballIntegrity: string;
/** The consumer projects by name, installed once for all their tests. */
const consumers = new Map<string, string>();

async function sh(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

/** The production dependencies' lockfile entries from this repository's lockfile, with theirs. */
function lockedDependencies(): Record<string, LockEntry> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const out: Record<string, LockEntry> = {};
  const pending = Object.keys(pkg.dependencies);
  while (pending.length > 0) {
    const name = pending.pop()!;
    const key = `node_modules/${name}`;
    if (out[key]) continue;
    const entry = lock.packages[key];
    if (!entry) throw new Error(`package-lock.json has no hoisted entry for ${name}`);
    out[key] = entry;
    pending.push(...Object.keys(entry.dependencies ?? {}));
  }
  return out;
}

/** A consumer project whose only dependency is the tarball, locked to our dependency versions. */
async function makeConsumer(name: string, type: 'commonjs' | 'module'): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  const spec = `file:../${tarball}`;
  const manifest = { name, version: '1.0.0', private: true, type, dependencies: { [pkg.name]: spec } };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  const installed = JSON.parse(await sh('tar', ['-xzOf', join(work, tarball), 'package/package.json'], work).then((r) => r.stdout)) as Record<string, unknown>;
  const lock = {
    name,
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name, version: '1.0.0', dependencies: { [pkg.name]: spec } },
      [`node_modules/${pkg.name}`]: {
        version: pkg.version,
        resolved: spec,
        integrity: tarballIntegrity,
        license: installed.license,
        dependencies: installed.dependencies,
        bin: installed.bin,
        engines: installed.engines,
      },
      ...lockedDependencies(),
    },
  };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  let installLog: { stdout: string; stderr: string };
  try {
    installLog = await sh('npm', ['ci', '--offline'], dir);
  } catch (e) {
    if (!/ENOTCACHED/.test(String(e))) throw e;
    installLog = await sh('npm', ['ci', '--prefer-offline'], dir);
  }
  // Installing guestkit must not ask its users to review install scripts: it has none they run.
  expect(installLog.stdout + installLog.stderr).not.toMatch(/install scripts|allowScripts/i);
  return dir;
}

/** The library exercised end to end: sizes, errors, create, convert, info, compare, plan validation. */
const SCRIPT_BODY = `
const { closeSync, mkdtempSync, openSync, readSync, writeFileSync } = require_('node:fs');
const { join } = require_('node:path');
async function main() {
  // Inside the consumer project, which the test removes.
  const dir = mkdtempSync(join(process.cwd(), 'scratch-'));
  const raw = join(dir, 'disk.raw');
  const data = Buffer.alloc(gk.parseSize('1M'));
  data.write('guestkit', 65536);
  writeFileSync(raw, data);
  await gk.convert({ source: raw, output: join(dir, 'disk.qcow2') });
  const info = await gk.imageInfo(join(dir, 'disk.qcow2'));
  const same = await gk.compareImages(raw, join(dir, 'disk.qcow2'));
  const detected = gk.detectBytes({ head: readHead(join(dir, 'disk.qcow2')), tail: new Uint8Array(0), size: undefined }).format;
  let usage;
  try { gk.parseSize('lots'); } catch (e) { usage = { isGuestkitError: e instanceof gk.GuestkitError, code: e.code }; }
  const plan = await gk.validatePipelinePlan({ disks: [{ source: raw, output: join(dir, 'p.vdi'), stages: ['convert', 'verify'] }] });
  const created = await gk.createImage({ format: 'qcow2', path: join(dir, 'new.qcow2'), size: gk.parseSize('2M') });
  // import() takes the "import" condition even from CommonJS: both builds must export the same names.
  const esmNames = Object.keys(await import('guestkit')).filter((k) => k !== 'default').sort();
  const sameExports = JSON.stringify(Object.keys(gk).sort()) === JSON.stringify(esmNames) && esmNames.length > 50;
  console.log(JSON.stringify({ sameExports, format: info.format, size: info['virtual-size'], identical: same.identical, detected, usage, plan, created: created.virtualSize }));
}
function readHead(p) {
  const fd = openSync(p, 'r');
  const b = Buffer.alloc(512);
  readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  return b;
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

const EXPECTED = {
  sameExports: true,
  format: 'qcow2',
  size: 1048576,
  identical: true,
  detected: 'qcow2',
  usage: { isGuestkitError: true, code: 'EUSAGE' },
  plan: { disks: 1 },
  created: 2097152,
};

/** A TypeScript consumer: compiles only when the types resolve in its module mode and a plan is checked. */
const TS_CONSUMER = `
import { parseSize, runPipeline, type PipelinePlan, type PlanDisk } from 'guestkit';
export const size: number = parseSize('1G');
export const plan: PipelinePlan = { concurrency: 2, disks: [{ source: 'a.vmdk', output: 'a.qcow2', stages: ['convert', { type: 'checksum', of: 'output' }] }] };
export const started = () => runPipeline(plan, { state: false });
// @ts-expect-error a disk needs a source
export const bad: PlanDisk = { output: 'b.qcow2' };
`;

/**
 * Type-checks the consumer in its project's module mode; returns the declaration file
 * TypeScript resolved 'guestkit' to, which proves the right exports condition was taken.
 */
async function typeCheck(dir: string, module: 'node16' | 'nodenext', file: string): Promise<string> {
  writeFileSync(join(dir, file), TS_CONSUMER);
  const tsconfig = {
    compilerOptions: {
      module,
      moduleResolution: module,
      target: 'ES2022',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules/@types')],
    },
    files: [file],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const { stdout } = await sh(process.execPath, [TSC, '-p', 'tsconfig.json', '--traceResolution'], dir);
  const m = /Module name 'guestkit' was successfully resolved to '([^']+)'/.exec(stdout);
  if (!m) throw new Error(`tsc did not resolve 'guestkit':\n${stdout.slice(0, 4000)}`);
  return m[1];
}

describe('the packed tarball', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'guestkit-pack-'));
    const copy = join(work, 'pkg');
    mkdirSync(copy);
    // What `prepare` needs to build, and what `files` ships.
    const entries = new Set(['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', ...pkg.files.filter((f) => !f.startsWith('!') && !f.startsWith('dist'))]);
    for (const entry of entries) {
      if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
    const { stdout } = await sh('npm', ['pack', '--json', '--pack-destination', work], copy);
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; integrity: string; files: { path: string }[] }[];
    tarball = packed.filename;
    tarballIntegrity = packed.integrity;
    packedFiles = packed.files.map((f) => f.path);
    // Both installs at once: each is mostly waiting on npm.
    const [cjs, esm] = await Promise.all([makeConsumer('cjs', 'commonjs'), makeConsumer('esm', 'module')]);
    consumers.set('cjs', cjs).set('esm', esm);
  }, 120_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the library in both module systems, the CLI bundle, the plan schema and the sources its maps name', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json', 'dist/cli/bin.js', 'dist/cli/bundle/run.mjs', 'schema/plan.schema.json', 'src/index.ts', 'README.md', 'CHANGELOG.md', 'docs/API.md', 'LICENSE', 'COPYING']) {
      expect(packedFiles, f).toContain(f);
    }
    // The CLI runs from its bundle: the unbundled command modules would only be dead weight.
    expect(packedFiles.filter((f) => f.startsWith('dist/cli/') && !f.startsWith('dist/cli/bundle/') && !f.startsWith('dist/cli/bin.js'))).toEqual([]);
    expect(packedFiles.filter((f) => /(^|\/)\.build-stamp$|\.test\.|^test\/|^fixtures\/|^bench\//.test(f))).toEqual([]);
  });

  it('has source maps whose sources are all in the package', async () => {
    const dir = join(work, 'maps');
    mkdirSync(dir);
    await sh('tar', ['-xzf', join(work, tarball), '-C', dir], work);
    const root = join(dir, 'package');
    const missing: string[] = [];
    const maps = packedFiles.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(50);
    for (const map of maps) {
      const m = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[]; sourceRoot?: string };
      m.sources.forEach((s, i) => {
        if (m.sourcesContent?.[i]) return;
        const file = resolve(dirname(join(root, map)), m.sourceRoot ?? '', s);
        if (!existsSync(file)) missing.push(`${map} → ${s}`);
      });
    }
    expect(missing).toEqual([]);
  });

  describe.each([
    { name: 'cjs', type: 'commonjs' as const, head: "const gk = require('guestkit'); const require_ = require;", file: 'main.cjs', tsModule: 'node16' as const, tsFile: 'consumer.cts', types: 'dist/cjs/index.d.ts' },
    {
      name: 'esm',
      type: 'module' as const,
      head: "import * as gk from 'guestkit'; import { createRequire } from 'node:module'; const require_ = createRequire(import.meta.url);",
      file: 'main.mjs',
      tsModule: 'nodenext' as const,
      tsFile: 'consumer.mts',
      types: 'dist/index.d.ts',
    },
  ])('installed into a fresh $name project', ({ name, type, head, file, tsModule, tsFile, types }) => {
    let dir: string;
    beforeAll(() => {
      dir = consumers.get(name)!;
    });

    it('runs the library', async () => {
      writeFileSync(join(dir, file), `${head}\n${SCRIPT_BODY}`);
      const { stdout } = await sh(process.execPath, [file], dir);
      expect(JSON.parse(stdout)).toEqual(EXPECTED);
    });

    it('runs the guestkit bin', async () => {
      const bin = join(dir, 'node_modules/.bin/guestkit');
      expect((await sh(bin, ['--version'], dir)).stdout.trim()).toBe(pkg.version);
      // A command, not only --version, so the CLI bundle's chunks are proved shipped.
      writeFileSync(join(dir, 'tiny.raw'), Buffer.alloc(65536));
      const info = JSON.parse((await sh(bin, ['info', '--output=json', 'tiny.raw'], dir)).stdout) as { format: string };
      expect(info.format).toBe('raw');
    });

    it('type-checks a TypeScript consumer against its own declarations', async () => {
      expect(await typeCheck(dir, tsModule, tsFile)).toBe(join(dir, 'node_modules/guestkit', types));
    });

    it('exposes the plan schema and package.json through the exports map', async () => {
      const probe = type === 'commonjs' ? 'probe.cjs' : 'probe.mjs';
      const code =
        type === 'commonjs'
          ? "console.log(JSON.stringify([require('guestkit/plan.schema.json').title, require('guestkit/package.json').version]))"
          : "import s from 'guestkit/plan.schema.json' with { type: 'json' }; import p from 'guestkit/package.json' with { type: 'json' }; console.log(JSON.stringify([s.title, p.version]))";
      writeFileSync(join(dir, probe), code);
      const { stdout } = await sh(process.execPath, ['--no-warnings', probe], dir);
      expect(JSON.parse(stdout)).toEqual(['guestkit pipeline plan', pkg.version]);
    });
  });
});

describe("the repository's own install", () => {
  it('leaves no dependency install script unreviewed, so `npm ci` prints no allowScripts warning', async () => {
    const { stdout, stderr } = await sh('npm', ['install-scripts', 'ls'], ROOT);
    expect(stdout + stderr).toMatch(/No packages with unreviewed install scripts/);
  });
});
