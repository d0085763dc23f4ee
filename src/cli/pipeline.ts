/**
 * `guestkit pipeline run PLAN` and `guestkit pipeline validate PLAN`. Registering the commands
 * loads only commander; the pipeline code is imported when a command runs, so `--help` and
 * other commands start as fast as before.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { writeSync } from 'node:fs';
import { onSignalDeath } from '../stream/atomic.js';

interface RunFlags {
  events?: string;
  resume?: boolean;
  force?: boolean;
  concurrency?: string;
  state?: string;
  stateless?: boolean;
  resumeCheck?: string;
}

const PLAN_HELP = `
A plan is a JSON document (read incrementally, so it may list many thousands of disks):

  {
    "concurrency": 4,
    "retry": { "attempts": 3, "baseDelayMs": 200, "maxDelayMs": 5000 },
    "defaults": { "format": "qcow2", "stages": ["detect", "convert", "verify", "checksum"] },
    "disks": [
      { "source": "vm1.vmdk", "output": "out/vm1.qcow2" },
      { "id": "db", "source": "db.vhd", "output": "out/db.qcow2", "options": "cluster_size=64k",
        "force": true,
        "stages": ["inspect-info", "convert", "verify", { "type": "copy-to", "dir": "/mnt/backup" }] }
    ]
  }

or a JSON-lines file (*.jsonl, *.ndjson) with one disk per line, optionally after a first line
{"settings": {"concurrency": 4, "retry": {...}, "defaults": {...}}}.

Disk fields (each but id, source and output may also be set in "defaults"):
  id            name in events, summary and resume state (default: the output, else the source)
  source        image to read; output: image to write (its folder is created when missing)
  sourceFormat  source format (detected when omitted); format: output format (from the output's
                extension when omitted, else raw); compress: true for a compressed output
  options       output format options: {"cluster_size": "64k"} or "cluster_size=64k"
                (at most 64 keys; each entry of a plan is at most 1 MiB)
  force         true: replace this disk's existing output and copies (--force does it for all);
                without it an existing output fails the disk, so a finished plan is not rewritten
  stages        what to do, in order; default: ["convert", "verify"]

Stages: detect (name the source format; {"type":"detect","expect":"vmdk"} checks it),
inspect-info (qemu-img info fields), convert (source → output), verify (output reads the same
as the source), checksum (SHA-256 of the virtual content; {"expect": "<hex>"} checks it),
copy-to (copy the output into a folder atomically: {"type":"copy-to","dir":"..."}).
Relative paths are taken from the plan's folder. Two disks may not write the same file (also
through a symlinked folder or a hard link), nor may one read what another writes.
A failed disk does not stop the others; transient I/O errors are retried with backoff.`;

const RUN_EXAMPLES = `
Examples:
  guestkit pipeline run migrate.json
  guestkit pipeline run --events json migrate.json > events.jsonl
  guestkit pipeline run --concurrency 2 --resume migrate.json     # after an interruption
  guestkit pipeline run --state /var/lib/migrate.state.jsonl --resume big-plan.jsonl
  guestkit pipeline run --force migrate.json                      # redo every disk, replacing outputs

Exit codes: 0 every disk succeeded (or was already done), 1 some disk failed (the summary
names each), 2 the plan or the options are invalid (every bad field is named).
A disk whose source is missing fails alone at run time; \`pipeline validate\` reports such
problems (missing sources, output folders that cannot be written) for every disk beforehand.
With --events json, stdout carries one JSON object per line: plan-started, disk-started,
stage-started, progress, retry, stage-done, disk-skipped, disk-failed, disk-finished, summary.
An error in an event has "code" (the system's errno: ENOENT, EACCES, ENOSPC…, else ours:
ECORRUPT, EVERIFY…) and "error" (its class: IoError, CorruptImageError, VerificationError…).
Finished disks are recorded in PLAN.state.jsonl (or --state FILE); --resume skips a disk only
if its recorded outputs still exist with the same size and modification time
(--resume-check checksum also re-hashes them). Interrupted (Ctrl-C), a run prints the
command that goes on where it stopped.
${PLAN_HELP}`;

/** What to type to go on after an interruption, for the message printed when one happens. */
function resumeHint(planPath: string, f: RunFlags): string {
  if (f.stateless) return 'interrupted; this run kept no resume state (--no-state): run it again with --force to redo every disk';
  return `interrupted; finished disks are recorded, so to go on where this run stopped: guestkit pipeline run --resume${f.state ? ` --state ${f.state}` : ''} ${planPath}`;
}

/**
 * A rejected promise nobody handles would make Node end the process, taking every other disk
 * down with it and printing no summary. The disk it belongs to has failed through its own path
 * already (the stray is a second, orphaned error), so it is reported and counted here, and the
 * run goes on; the exit code says something went wrong.
 */
function containStrayRejections(): { count(): number; stop(): void } {
  let strays = 0;
  const onStray = (reason: unknown) => {
    strays++;
    const message = reason instanceof Error ? reason.message : String(reason);
    process.stderr.write(`guestkit: internal error (an unhandled rejection, contained so the other disks go on): ${message.slice(0, 500)}\n`);
  };
  process.on('unhandledRejection', onStray);
  return { count: () => strays, stop: () => process.off('unhandledRejection', onStray) };
}

function parseConcurrency(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency takes a number of disks from 1 to 64, not '${text}'`);
  return n;
}

async function run(planPath: string, f: RunFlags): Promise<void> {
  const events = f.events ?? 'human';
  if (events !== 'json' && events !== 'human') throw new UsageError(`--events takes json or human, not '${events}'`);
  const resumeCheck = f.resumeCheck ?? 'quick';
  if (resumeCheck !== 'quick' && resumeCheck !== 'checksum') throw new UsageError(`--resume-check takes quick or checksum, not '${resumeCheck}'`);
  if (f.stateless && (f.resume || f.state)) throw new UsageError('--no-state cannot be combined with --resume or --state');
  const concurrency = parseConcurrency(f.concurrency);

  const { runPipeline } = await import('../api/pipeline.js');
  const { HumanView } = await import('../pipeline/human-view.js');
  const view = events === 'human' ? new HumanView(process.stdout) : undefined;
  // A signal ends the process by dying of it (installCleanupHandlers): the hook it runs first is
  // the one moment left to say how to go on. writeSync: nothing asynchronous runs after it.
  const stopHint = onSignalDeath(() => writeSync(2, `\nguestkit: ${resumeHint(planPath, f)}\n`));
  const strays = containStrayRejections();
  try {
    const summary = await runPipeline(planPath, {
      concurrency,
      resume: f.resume,
      force: f.force,
      statePath: f.state,
      ...(f.stateless ? { state: false as const } : {}),
      resumeCheck,
      onEvent: view ? (e) => view.handle(e) : (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
    });
    process.exitCode = summary.failed > 0 || strays.count() > 0 ? 1 : 0;
  } finally {
    stopHint();
    strays.stop();
  }
}

async function validate(planPath: string, f: { json?: boolean }): Promise<void> {
  const { validatePipelinePlan } = await import('../api/pipeline.js');
  const { disks } = await validatePipelinePlan(planPath);
  if (f.json) process.stdout.write(`${JSON.stringify({ plan: planPath, valid: true, disks })}\n`);
  else process.stdout.write(`${planPath}: valid, ${disks} disk${disks === 1 ? '' : 's'}\n`);
}

export function registerPipelineCommand(program: Command): void {
  const pipeline = program
    .command('pipeline')
    .description('run migration plans over many disks: detect, inspect, convert, verify, checksum, copy')
    .addHelpText('after', `\nExamples:\n  guestkit pipeline run migrate.json\n  guestkit pipeline validate migrate.json\n  guestkit pipeline run --help   # the plan format`);

  pipeline
    .command('run')
    .description('run every disk of a plan, several at a time; a failed disk does not stop the others')
    .argument('<plan>', 'plan file: JSON, or JSON lines (.jsonl/.ndjson) with one disk per line')
    .option('--events <mode>', 'json (one event per line on stdout) or human', 'human')
    .option('--resume', 'skip disks an earlier run finished whose outputs are unchanged')
    .option('--force', 'replace existing outputs and copies (as "force": true in every disk)')
    .option('--resume-check <mode>', 'how finished outputs are re-checked: quick (size, mtime) or checksum', 'quick')
    .option('--concurrency <n>', "disks in flight at once (overrides the plan's concurrency)")
    .option('--state <file>', 'resume state file (default: PLAN.state.jsonl beside the plan)')
    .option('--no-state', 'keep no resume state')
    .addHelpText('after', RUN_EXAMPLES)
    .action(async (plan: string, opts: Omit<RunFlags, 'state'> & { state?: string | false }) => {
      // commander folds --state FILE and --no-state into one `state` option.
      const stateless = opts.state === false;
      await run(plan, { ...opts, state: typeof opts.state === 'string' ? opts.state : undefined, stateless });
    });

  pipeline
    .command('validate')
    .description('check a plan without running it: every bad field, missing or unreadable source, output folder that cannot be written, and two disks writing one file')
    .argument('<plan>', 'plan file')
    .option('--json', 'print a JSON object')
    .addHelpText('after', `\nExamples:\n  guestkit pipeline validate migrate.json\n  guestkit pipeline validate --json disks.jsonl\n${PLAN_HELP}`)
    .action(async (plan: string, opts: { json?: boolean }) => validate(plan, opts));
}
