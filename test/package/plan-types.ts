/**
 * Compile-time checks of the exported plan types (`npm run typecheck` / CI's tsc covers this
 * file): a plan written in TypeScript is checked field by field, as the runner would.
 * Each @ts-expect-error fails the type check if the line it marks stops being an error.
 */
import { runPipeline, type PipelinePlan, type PlanDisk, type PlanStage } from '../../src/index.js';

export const plan: PipelinePlan = {
  concurrency: 2,
  retry: { attempts: 3 },
  defaults: { format: 'qcow2', stages: ['convert', { type: 'verify', strict: true }] },
  disks: [
    { source: 'a.vmdk', output: 'a.qcow2' },
    { id: 'b', source: 'b.raw', output: 'b.vhd', options: 'subformat=fixed', stages: ['detect', 'convert', { type: 'copy-to', dir: 'out' }] },
  ],
};
export const run = (): ReturnType<typeof runPipeline> => runPipeline(plan);

// @ts-expect-error a disk needs a source
export const noSource: PlanDisk = { output: 'x.qcow2' };
// @ts-expect-error misspelt field (the schema is strict)
export const misspelt: PlanDisk = { source: 'a', ouptut: 'b' };
// @ts-expect-error copy-to needs its dir, so it has no bare spelling
export const bareCopy: PlanStage = 'copy-to';
// @ts-expect-error no such stage
export const unknownStage: PlanStage = 'inspect';
// @ts-expect-error concurrency is a number
export const badConcurrency: PipelinePlan = { concurrency: '4', disks: [] };
// @ts-expect-error disks are objects with a source
export const badDisks: PipelinePlan = { disks: ['a.raw'] };
