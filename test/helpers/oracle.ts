/**
 * qemu-img as a test oracle. Oracle tests skip visibly when it is absent, and fail instead when
 * GUESTKIT_REQUIRE_ORACLE=1 (as CI sets it), so a CI machine without qemu-utils cannot pass
 * by skipping. Production code never calls qemu-img.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect } from 'vitest';
import type { MapEntry } from '../../src/api/map.js';

function find(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

export const QEMU_IMG = find('qemu-img');
export const QEMU_IO = find('qemu-io');
export const REQUIRE_ORACLE = process.env.GUESTKIT_REQUIRE_ORACLE === '1';

/** describe() for tests that need qemu-img (and qemu-io). */
export function describeOracle(name: string, fn: () => void): void {
  if (QEMU_IMG && QEMU_IO) {
    describe(name, fn);
    return;
  }
  if (REQUIRE_ORACLE) {
    describe(name, () => {
      throw new Error('qemu-img/qemu-io not found but GUESTKIT_REQUIRE_ORACLE=1: install qemu-utils');
    });
    return;
  }
  describe.skip(`${name} [skipped: qemu-img not installed]`, fn);
}

/** describe() for tests that need another external tool (vmdkinfo, python3 -c 'import pyvhdi', …). */
export function describeWithTool(tool: string, available: boolean, name: string, fn: () => void): void {
  if (available) describe(name, fn);
  else if (REQUIRE_ORACLE) {
    describe(name, () => {
      throw new Error(`${tool} not found but GUESTKIT_REQUIRE_ORACLE=1`);
    });
  } else describe.skip(`${name} [skipped: ${tool} not installed]`, fn);
}

export function qemuImg(...args: string[]): string {
  return execFileSync(QEMU_IMG ?? 'qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

/** Runs qemu-img and returns its exit status and output instead of throwing. */
export function qemuImgStatus(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(QEMU_IMG ?? 'qemu-img', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function qemuIo(format: string, image: string, ...cmds: string[]): void {
  execFileSync(QEMU_IO ?? 'qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), image], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `qemu-img convert -O raw`, the reference reading of any image. */
export function qemuToRaw(image: string, out: string, format?: string): void {
  qemuImg('convert', ...(format ? ['-f', format] : []), '-O', 'raw', image, out);
}

/** `qemu-img map --output=json`, typed as our own map entries (src/api/map.ts), which share its fields. */
export function qemuMapEntries(path: string, format?: string): MapEntry[] {
  return JSON.parse(qemuImg('map', '--output=json', ...(format ? ['-f', format] : []), path)) as MapEntry[];
}

/** `qemu-img info --output=json`, with `-f` when given (a fixed VHD must be named: qemu probes it as raw). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function qemuInfoJson(path: string, format?: string): Record<string, any> {
  return JSON.parse(qemuImg('info', ...(format ? ['-f', format] : []), '--output=json', path));
}

/** `qemu-img check` finds no errors, corruptions or leaks (exit 0 and its JSON agrees). */
export function expectQemuCheckClean(path: string, format?: string): void {
  const r = qemuImgStatus('check', ...(format ? ['-f', format] : []), '--output=json', path);
  expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j['check-errors'] ?? 0).toBe(0);
  expect(j.corruptions ?? 0).toBe(0);
  expect(j.leaks ?? 0).toBe(0);
}
