/**
 * Flags and habits a qemu-img user brings: -q, -W, -U accepted; --output values other than
 * human/json refused with qemu-img's message and exit code; `-o help` lists the driver's options
 * from its schema; an unknown -o key names the valid ones.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { drivers } from '../../src/formats/registry.js';
import { optionFields } from '../../src/formats/shared/option-list.js';
import { guestkit } from '../helpers/cli.js';
import { QEMU_IMG, qemuImgStatus } from '../helpers/oracle.js';
import { pseudoRandom, workDir } from '../helpers/work.js';

const dir = workDir('qemu-habits');
const src = join(dir, 'src.raw');
const data = new Uint8Array(1024 * 1024);
data.set(pseudoRandom(64 * 1024, 3), 128 * 1024);
writeFileSync(src, data);
const qcow = join(dir, 'src.qcow2');

describe('qemu-img flags are accepted', () => {
  it('convert -q -W -U -p: converts, and prints nothing at all (-q wins over -p and --json)', () => {
    const r = guestkit(['convert', '-q', '-W', '-U', '-p', '--json', '-O', 'qcow2', src, qcow]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    const back = join(dir, 'back.raw');
    expect(guestkit(['convert', '--quiet', '--force-share', qcow, back]).status).toBe(0);
    expect(Buffer.compare(readFileSync(back), Buffer.from(data))).toBe(0);
  });

  it('-U (--force-share) is a no-op for info, map, check, compare and measure: we never lock', () => {
    for (const args of [['info', '-U', qcow], ['map', '-U', qcow], ['check', '-U', qcow], ['compare', '-U', src, qcow], ['measure', '-U', '-O', 'qcow2', qcow]]) {
      const r = guestkit(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('check -q prints nothing and answers with the exit code', () => {
    const r = guestkit(['check', '-q', qcow]);
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });
});

describe('--output takes human or json only', () => {
  const message = '--output must be used with human or json as argument.';
  for (const cmd of [['info', qcow], ['map', qcow], ['check', qcow], ['measure', '-O', 'qcow2', qcow], ['detect', qcow]]) {
    it(`${cmd[0]} --output xml is refused, as qemu-img refuses it (exit 1)`, () => {
      const r = guestkit([cmd[0], '--output', 'xml', ...cmd.slice(1)]);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`guestkit: ${message}\n`);
      expect(r.status).toBe(1);
    });
  }

  it.skipIf(!QEMU_IMG)('qemu-img says the same, with the same exit code', () => {
    const q = qemuImgStatus('info', '--output', 'xml', qcow);
    expect(q.stderr).toBe(`qemu-img: ${message}\n`);
    expect(q.status).toBe(1);
  });
});

describe('-o help and unknown -o keys', () => {
  const writable = drivers().filter((d) => d.capabilities.write && d.create);
  for (const d of writable) {
    it(`create -f ${d.name} -o help lists every option of its schema, with defaults`, () => {
      const r = guestkit(['create', '-f', d.name, '-o', 'help']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Supported ${d.name} options:\\n`));
      const fields = optionFields(d.optionsSchema);
      for (const f of fields) expect(r.stdout).toMatch(new RegExp(`^  ${f.name}=.* - \\S`, 'm'));
      // The same list from convert, which needs no file names for it.
      expect(guestkit(['convert', '-O', d.name, '-o', 'help']).stdout).toBe(r.stdout);
    });
  }

  it('shows schema defaults (vhd subformat) and enumerations', () => {
    const r = guestkit(['create', '-f', 'vpc', '-o', '?']);
    expect(r.stdout).toMatch(/^ {2}subformat=dynamic\|fixed +- .*\(default: dynamic\)$/m);
  });

  it('an unknown key names the valid ones', () => {
    const out = join(dir, 'x.qcow2');
    const r = guestkit(['create', '-f', 'qcow2', '-o', 'clustre_size=4k', out, '1M']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown qcow2 option 'clustre_size'; qcow2 takes compat, cluster_size, .*lazy_refcounts/);
    const c = guestkit(['convert', '-O', 'vdi', '-o', 'fixed=on', src, join(dir, 'x.vdi')]);
    expect(c.stderr).toMatch(/unknown vdi option 'fixed'; vdi takes static, uuid/);
  });

  it('raw takes zeroes=on as the other drivers take their booleans', () => {
    const r = guestkit(['convert', '-O', 'raw', '-o', 'zeroes=on', src, join(dir, 'z.raw')]);
    expect(r.status, r.stderr).toBe(0);
  });
});
