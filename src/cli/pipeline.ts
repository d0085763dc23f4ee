/**
 * `guestkit pipeline run PLAN` and `guestkit pipeline validate PLAN`. Registering the commands
 * loads only commander; the pipeline code is imported when a command runs, so `--help` and
 * other commands start as fast as before.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';

interface RunFlags {
  events?: string;
  resume?: boolean;
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
        "stages": ["inspect-info", "convert", "verify", { "type": "copy-to", "dir": "/mnt/backup" }] }
    ]
  }

or a JSON-lines file (*.jsonl, *.ndjson) with one disk per line, optionally after a first line
{"settings": {"concurrency": 4, "retry": {...}, "defaults": {...}}}.

Stages: detect (name the source format; {"type":"detect","expect":"vmdk"} checks it),
inspect-info (qemu-img info fields), convert (source → output), verify (output reads the same
as the source), checksum (SHA-256 of the virtual content; {"expect": "<hex>"} checks it),
copy-to (copy the output into a folder atomically: {"type":"copy-to","dir":"..."}).
Relative paths are taken from the plan's folder. A failed disk does not stop the others;
transient I/O errors are retried with backoff.`;

const RUN_EXAMPLES = `
Examples:
  guestkit pipeline run migrate.json
  guestkit pipeline run --events json migrate.json > events.jsonl
  guestkit pipeline run --concurrency 2 --resume migrate.json     # after an interruption
  guestkit pipeline run --state /var/lib/migrate.state.jsonl --resume big-plan.jsonl

Exit codes: 0 every disk succeeded (or was already done), 1 some disk failed (the summary
names each), 2 the plan or the options are invalid (every bad field is named).
With --events json, stdout carries one JSON object per line: plan-started, disk-started,
stage-started, progress, retry, stage-done, disk-skipped, disk-failed, disk-finished, summary.
Finished disks are recorded in PLAN.state.jsonl (or --state FILE); --resume skips a disk only
if its recorded outputs still exist with the same size and modification time
(--resume-check checksum also re-hashes them).
${PLAN_HELP}`;

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
  const summary = await runPipeline(planPath, {
    concurrency,
    resume: f.resume,
    statePath: f.state,
    ...(f.stateless ? { state: false as const } : {}),
    resumeCheck,
    onEvent: view ? (e) => view.handle(e) : (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
  });
  process.exitCode = summary.failed > 0 ? 1 : 0;
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
    .description('check a plan without running it; every bad field is named')
    .argument('<plan>', 'plan file')
    .option('--json', 'print a JSON object')
    .addHelpText('after', `\nExamples:\n  guestkit pipeline validate migrate.json\n  guestkit pipeline validate --json disks.jsonl\n${PLAN_HELP}`)
    .action(async (plan: string, opts: { json?: boolean }) => validate(plan, opts));
}
