/**
 * The copy-loop benchmark: guestkit and qemu-img convert the same inputs in the same run,
 * alternating, several times; the table gives median seconds, the guestkit/qemu-img time ratio,
 * throughput of virtual and of allocated data, and peak RSS of both (GNU time's %M). A plain `cp`
 * of the dense image is the platform ceiling.
 *
 *   npm run bench                 full set (2 GiB mixed, 1 GiB dense, 1 TiB sparse qcow2), 5 reps
 *   npm run bench -- --quick      reduced set (256 MiB inputs, 1 rep) in under two minutes
 *   npm run bench -- --reps 5 --only raw-qcow2,qcow2-raw
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDense, makeMixed } from './inputs.js';
import { byName } from '../src/formats/registry.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'bench', 'work');
const CLI = join(ROOT, 'dist', 'cli', 'bin.js');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const reps = Number(args[args.indexOf('--reps') + 1]) || (quick ? 1 : 5);
const only = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1].split(',')) : undefined;

interface Pair {
  id: string;
  input: string;
  /** guestkit convert arguments before SRC DST. */
  ours: string[];
  /** qemu-img convert arguments before SRC DST. */
  theirs: string[];
  outExt: string;
  /** Formats guestkit must read and write for this pair. */
  needs: string[];
  /** Compare against qemu-img's default and against `-m 8 -W` (compressed pairs). */
  compressed?: boolean;
}

interface Timing {
  seconds: number;
  rssKiB: number;
}

function timed(cmd: string, argv: string[]): Timing {
  const out = join(WORK, 'time.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', out, cmd, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  const [secs, rss] = readFileSync(out, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  return { seconds: secs, rssKiB: rss };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

function canDo(formats: string[]): boolean {
  return formats.every((f) => {
    const d = byName(f);
    return d.capabilities.read && d.capabilities.write;
  });
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(WORK, { recursive: true });
  const mixedSize = quick ? 256 * MiB : 2 * GiB;
  const denseSize = quick ? 256 * MiB : 1 * GiB;
  const mixed = join(WORK, `mixed-${mixedSize / MiB}M.raw`);
  const dense = join(WORK, `dense-${denseSize / MiB}M.raw`);
  process.stderr.write('bench: making inputs…\n');
  await makeMixed(mixed, mixedSize);
  await makeDense(dense, denseSize);
  const q = (...a: string[]) => execFileSync('qemu-img', a, { stdio: ['ignore', 'ignore', 'inherit'] });
  const derived = (name: string, make: () => void) => {
    const p = join(WORK, name);
    if (!existsSync(p)) make();
    return p;
  };
  const mixedQcow2 = derived(`mixed-${mixedSize / MiB}M.qcow2`, () => q('convert', '-f', 'raw', '-O', 'qcow2', mixed, join(WORK, `mixed-${mixedSize / MiB}M.qcow2`)));
  const mixedStream = derived(`mixed-${mixedSize / MiB}M-stream.vmdk`, () =>
    q('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', mixed, join(WORK, `mixed-${mixedSize / MiB}M-stream.vmdk`)),
  );
  const mixedComp = derived(`mixed-${mixedSize / MiB}M-c.qcow2`, () => q('convert', '-f', 'raw', '-O', 'qcow2', '-c', mixed, join(WORK, `mixed-${mixedSize / MiB}M-c.qcow2`)));
  const mixedVhdx = derived(`mixed-${mixedSize / MiB}M.vhdx`, () => q('convert', '-f', 'raw', '-O', 'vhdx', mixed, join(WORK, `mixed-${mixedSize / MiB}M.vhdx`)));
  const huge = derived('huge-1T.qcow2', () => {
    const p = join(WORK, 'huge-1T.qcow2');
    q('create', '-f', 'qcow2', p, '1T');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 4M', '-c', 'write -P 0xcd 500G 4M', '-c', 'write -P 0xef 1023G 4M', p], { stdio: 'ignore' });
  });

  const pairs: Pair[] = [
    { id: 'raw-raw', input: dense, ours: ['-O', 'raw'], theirs: ['-f', 'raw', '-O', 'raw'], outExt: 'raw', needs: ['raw'] },
    { id: 'raw-qcow2', input: mixed, ours: ['-O', 'qcow2'], theirs: ['-f', 'raw', '-O', 'qcow2'], outExt: 'qcow2', needs: ['raw', 'qcow2'] },
    { id: 'qcow2-raw', input: mixedQcow2, ours: ['-O', 'raw'], theirs: ['-f', 'qcow2', '-O', 'raw'], outExt: 'raw', needs: ['qcow2', 'raw'] },
    { id: 'raw-vmdk', input: mixed, ours: ['-O', 'vmdk'], theirs: ['-f', 'raw', '-O', 'vmdk'], outExt: 'vmdk', needs: ['raw', 'vmdk'] },
    {
      id: 'raw-vmdk-stream',
      input: mixed,
      ours: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
      theirs: ['-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized'],
      outExt: 'vmdk',
      needs: ['raw', 'vmdk'],
      compressed: true,
    },
    { id: 'vmdkstream-qcow2', input: mixedStream, ours: ['-O', 'qcow2'], theirs: ['-f', 'vmdk', '-O', 'qcow2'], outExt: 'qcow2', needs: ['vmdk', 'qcow2'] },
    { id: 'raw-vhd', input: mixed, ours: ['-O', 'vhd'], theirs: ['-f', 'raw', '-O', 'vpc'], outExt: 'vhd', needs: ['raw', 'vhd'] },
    { id: 'raw-vdi', input: mixed, ours: ['-O', 'vdi'], theirs: ['-f', 'raw', '-O', 'vdi'], outExt: 'vdi', needs: ['raw', 'vdi'] },
    { id: 'raw-vhdx', input: mixed, ours: ['-O', 'vhdx'], theirs: ['-f', 'raw', '-O', 'vhdx'], outExt: 'vhdx', needs: ['raw', 'vhdx'] },
    { id: 'vhdx-raw', input: mixedVhdx, ours: ['-O', 'raw'], theirs: ['-f', 'vhdx', '-O', 'raw'], outExt: 'raw', needs: ['vhdx', 'raw'] },
    { id: 'vhdx-qcow2', input: mixedVhdx, ours: ['-O', 'qcow2'], theirs: ['-f', 'vhdx', '-O', 'qcow2'], outExt: 'qcow2', needs: ['vhdx', 'qcow2'] },
    { id: 'raw-qcow2-c', input: mixed, ours: ['-O', 'qcow2', '-c'], theirs: ['-f', 'raw', '-O', 'qcow2', '-c'], outExt: 'qcow2', needs: ['raw', 'qcow2'], compressed: true },
    { id: 'qcow2c-raw', input: mixedComp, ours: ['-O', 'raw'], theirs: ['-f', 'qcow2', '-O', 'raw'], outExt: 'raw', needs: ['qcow2', 'raw'] },
    { id: '1T-qcow2-qcow2', input: huge, ours: ['-O', 'qcow2'], theirs: ['-f', 'qcow2', '-O', 'qcow2'], outExt: 'qcow2', needs: ['qcow2'] },
    { id: '1T-qcow2-vmdk', input: huge, ours: ['-O', 'vmdk'], theirs: ['-f', 'qcow2', '-O', 'vmdk'], outExt: 'vmdk', needs: ['qcow2', 'vmdk'] },
  ];

  const rows: string[] = [];
  const header =
    '| pair | input (virtual / allocated) | guestkit s | qemu-img s | ratio | best of runs: guestkit / qemu-img s (ratio) | guestkit MB/s virt / alloc | qemu-img MB/s virt | RSS guestkit / qemu-img MiB |';
  rows.push(header, '|---|---|---|---|---|---|---|---|---|');
  const notes: string[] = [];

  // Platform ceiling: cp of the dense image.
  {
    const out = join(WORK, 'cp.out');
    const cpT: number[] = [];
    const nodeT: number[] = [];
    for (let i = 0; i < reps; i++) {
      rmSync(out, { force: true });
      cpT.push(timed('cp', ['--sparse=never', dense, out]).seconds);
      rmSync(out, { force: true });
    }
    const cp = median(cpT);
    for (let i = 0; i < reps; i++) {
      rmSync(out, { force: true });
      nodeT.push(timed(process.execPath, [CLI, 'convert', '-O', 'raw', dense, out]).seconds);
      rmSync(out, { force: true });
    }
    const durable = median(nodeT);
    rows.push(`| cp (dense), the ceiling | ${denseSize / MiB} MiB / ${denseSize / MiB} MiB | — | ${cp.toFixed(2)} (cp) | — | ${Math.min(...cpT).toFixed(2)} (cp) | — | ${(denseSize / MiB / cp).toFixed(0)} (cp) | — |`);
    rows.push(`| raw-raw durable (guestkit default: fsync before rename) | ${denseSize / MiB} MiB / ${denseSize / MiB} MiB | ${durable.toFixed(2)} | — | — | ${Math.min(...nodeT).toFixed(2)} | ${(denseSize / MiB / durable).toFixed(0)} | — | — |`);
  }

  for (const p of pairs) {
    if (only && !only.has(p.id)) continue;
    if (!canDo(p.needs)) {
      notes.push(`${p.id}: skipped — guestkit cannot yet ${p.needs.map((f) => `read/write ${f}`).join(' and ')}`);
      continue;
    }
    const vsize = Number(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', p.input], { encoding: 'utf8' }))['virtual-size']);
    const alloc = allocatedBytes(p.input);
    const ours: Timing[] = [];
    const theirs: Timing[] = [];
    const theirsMT: Timing[] = [];
    const outOurs = join(WORK, `out-ours.${p.outExt}`);
    const outTheirs = join(WORK, `out-qemu.${p.outExt}`);
    const clean = () => {
      for (const f of readdirSync(WORK)) if (f.startsWith('out-')) rmSync(join(WORK, f), { force: true });
      // Each run starts with nothing left to write back from the one before (both tools alike).
      spawnSync('sync');
    };
    for (let i = 0; i < reps; i++) {
      // Alternate who goes first so page-cache warmth does not favour one side.
      const runOurs = () => {
        clean();
        // -t unsafe: no final fsync, like qemu-img convert's default; the durable default is measured separately.
        ours.push(timed(process.execPath, [CLI, 'convert', '-t', 'unsafe', ...p.ours, p.input, outOurs]));
      };
      const runTheirs = () => {
        clean();
        theirs.push(timed('qemu-img', ['convert', ...p.theirs, p.input, outTheirs]));
        if (p.compressed) {
          clean();
          theirsMT.push(timed('qemu-img', ['convert', '-m', '8', '-W', ...p.theirs, p.input, outTheirs]));
        }
      };
      if (i % 2 === 0) {
        runOurs();
        runTheirs();
      } else {
        runTheirs();
        runOurs();
      }
    }
    clean();
    const o = median(ours.map((t) => t.seconds));
    const t = median(theirs.map((x) => x.seconds));
    const rssO = Math.max(...ours.map((x) => x.rssKiB)) / 1024;
    const rssT = Math.max(...theirs.map((x) => x.rssKiB)) / 1024;
    // Runs on this kind of VM are bimodal (see README): the best run shows each tool's own cost.
    const bestO = Math.min(...ours.map((x) => x.seconds));
    const bestT = Math.min(...theirs.map((x) => x.seconds));
    const best = `${bestO.toFixed(2)} / ${bestT.toFixed(2)} (${(bestO / bestT).toFixed(2)})`;
    let ratio = `${(o / t).toFixed(2)}`;
    let qemuCol = t.toFixed(2);
    if (p.compressed && theirsMT.length) {
      const mt = median(theirsMT.map((x) => x.seconds));
      ratio += ` (vs -m 8 -W: ${(o / mt).toFixed(2)})`;
      qemuCol += ` (-m 8 -W: ${mt.toFixed(2)})`;
    }
    rows.push(
      `| ${p.id} | ${(vsize / MiB).toFixed(0)} MiB / ${(alloc / MiB).toFixed(0)} MiB | ${o.toFixed(2)} | ${qemuCol} | ${ratio} | ${best} | ${(vsize / MiB / o).toFixed(0)} / ${(alloc / MiB / o).toFixed(0)} | ${(vsize / MiB / t).toFixed(0)} | ${rssO.toFixed(0)} / ${rssT.toFixed(0)} |`,
    );
    process.stderr.write(`bench: ${rows[rows.length - 1]}\n`);
  }

  const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? 'unknown CPU';
  const qemuVersion = execFileSync('qemu-img', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const report = [
    `# Benchmark ${new Date().toISOString()}${quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${cpuModel}, ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores; Node ${process.version}; ${qemuVersion}. Median of ${reps} run(s), warm page cache, outputs on the same filesystem.`,
    '',
    'guestkit runs with `-t unsafe` (no final fsync) because that is what qemu-img convert does by default; the durable default is shown on its own row.',
    '',
    ...rows,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  process.stdout.write(report);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', quick ? 'latest-quick.md' : 'latest.md'), report);
}

main().catch((e) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
