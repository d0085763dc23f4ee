/** The human view: log lines for disks, and on a terminal a live block of progress bars. */
import { describe, expect, it } from 'vitest';
import { HumanView } from '../../src/pipeline/human-view.js';
import { stamp, type PipelineEventInput } from '../../src/pipeline/events.js';

function render(isTTY: boolean, events: PipelineEventInput[]): string {
  let text = '';
  // Each event a fifth of a second after the last, past the ten-per-second redraw limit.
  let clock = 0;
  const view = new HumanView({ isTTY, columns: 80, write: (s: string) => (text += s) }, () => (clock += 200));
  for (const e of events) view.handle(stamp(e));
  return text;
}

const run: PipelineEventInput[] = [
  { type: 'plan-started', plan: 'plan.json', disks: 2, concurrency: 2, resume: false },
  { type: 'disk-started', disk: 'a', index: 0, source: '/a.vmdk', output: '/a.qcow2' },
  { type: 'stage-started', disk: 'a', stage: 'convert', step: 0 },
  { type: 'progress', disk: 'a', stage: 'convert', done: 512, total: 1024 },
  { type: 'stage-done', disk: 'a', stage: 'convert', step: 0, seconds: 0.5, result: { sourceFormat: 'vmdk', format: 'qcow2', virtualSize: 1024 ** 3 } },
  { type: 'disk-finished', disk: 'a', index: 0, seconds: 0.5, output: '/a.qcow2' },
  { type: 'disk-started', disk: 'b', index: 1, source: '/b.vhd', output: '/b.qcow2' },
  { type: 'retry', disk: 'b', stage: 'convert', attempt: 1, delayMs: 120, error: { code: 'EAGAIN', error: 'IoError', message: 'write failed: EAGAIN' } },
  { type: 'disk-failed', disk: 'b', index: 1, stage: 'convert', attempts: 2, error: { code: 'ECORRUPT', error: 'CorruptImageError', message: 'b.vhd: bad footer checksum' } },
  { type: 'summary', total: 2, succeeded: 1, failed: 1, skipped: 0, seconds: 1.25, failures: [{ disk: 'b', index: 1, stage: 'convert', message: 'b.vhd: bad footer checksum' }] },
];

describe('human view', () => {
  it('writes plain lines and a summary naming the failure when not on a terminal', () => {
    expect(render(false, run)).toBe(
      [
        'plan.json: 2 disks, 2 at a time',
        '✓ a (vmdk→qcow2, 1 GiB, 0.50 s)',
        '↻ b: convert failed (write failed: EAGAIN); try 2 in 120 ms',
        '✗ b: failed at convert after 2 tries: b.vhd: bad footer checksum',
        '',
        '2 disks: 1 succeeded, 1 failed in 1.3 s',
        'Failed:',
        '  b (disks[1], convert): b.vhd: bad footer checksum',
        '',
      ].join('\n'),
    );
  });

  it('draws progress bars on a terminal and erases them before each line and at the end', () => {
    const out = render(true, run);
    // The bar of disk a at 50 % and the overall bar, drawn together.
    expect(out).toContain('  [############            ]  50% convert      a\n');
    expect(out).toContain('[                        ]   0% 0/2 disks\n');
    // Erasing the block: cursor up over its lines, clear to the end of the screen.
    expect(out).toMatch(/\x1b\[2F\x1b\[J✓ a /);
    // After the summary no bars are left below it.
    expect(out.slice(out.lastIndexOf('\x1b[J'))).not.toMatch(/\[#* *\]/);
    expect(out).toMatch(/2 disks: 1 succeeded, 1 failed in 1\.3 s\nFailed:\n {2}b \(disks\[1\], convert\)/);
  });
});
