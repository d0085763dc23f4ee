/** The formats in `--help` come from the registry: every driver is listed with what it can do. */
import { describe, expect, it } from 'vitest';
import { drivers } from '../../src/formats/registry.js';
import { guestkit } from '../helpers/cli.js';

function formatRows(help: string): Map<string, string[]> {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => /^\s+format\s+read\s+write/.test(l));
  expect(start, help).toBeGreaterThan(0);
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(start + 1)) {
    const m = /^\s+(\S+)(?: \((\S+)\))?\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s/.exec(line);
    if (!m) break;
    rows.set(m[1], m.slice(2));
  }
  return rows;
}

describe('help lists the registered formats', () => {
  for (const args of [['--help'], ['convert', '--help'], ['create', '--help'], ['resize', '--help']]) {
    it(`guestkit ${args.join(' ')}`, () => {
      const r = guestkit(args);
      expect(r.status).toBe(0);
      const rows = formatRows(r.stdout);
      expect([...rows.keys()].sort()).toEqual(drivers().map((d) => d.name).sort());
      for (const d of drivers()) {
        const [qemu, read, write, pipeIn, pipeOut, compress, , resize, check] = rows.get(d.name)!;
        expect(qemu, d.name).toBe(d.qemuName);
        expect(read === 'yes', d.name).toBe(d.capabilities.read);
        expect(write === 'yes', d.name).toBe(d.capabilities.write && d.create !== undefined);
        expect(pipeIn, d.name).toBe(!d.capabilities.read ? '-' : d.capabilities.streamRead ? 'yes' : 'spool');
        expect(pipeOut === 'yes', d.name).toBe(d.capabilities.streamWrite);
        expect(compress === 'yes', d.name).toBe(d.capabilities.compression);
        expect(resize === 'yes', d.name).toBe(d.resize !== undefined);
        expect(check === 'yes', d.name).toBe(d.check !== undefined);
      }
    });
  }
});
