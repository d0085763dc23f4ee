/** The one write guard answers from each driver's own declaration, for convert, create, measure and plans alike. */
import { describe, expect, it } from 'vitest';
import { UnsupportedFeatureError, UsageError } from '../../src/errors.js';
import { requireWriter, writeRefusal } from '../../src/formats/capabilities.js';
import { byName, drivers } from '../../src/formats/registry.js';

describe('writeRefusal', () => {
  it('follows every registered driver’s capabilities', () => {
    for (const d of drivers()) {
      const canWrite = d.capabilities.write && d.create !== undefined;
      expect(writeRefusal(d)?.field, d.name).toBe(canWrite ? undefined : 'format');
      if (!canWrite) {
        expect(writeRefusal(d)!.error, d.name).toBeInstanceOf(UnsupportedFeatureError);
        continue;
      }
      expect(writeRefusal(d, { compress: true })?.field, d.name).toBe(d.capabilities.compression ? undefined : 'compress');
      expect(writeRefusal(d, { backing: true })?.field, d.name).toBe(d.capabilities.backing ? undefined : 'backing');
    }
  });

  it('suggests the formats that can make overlays, from the registry', () => {
    const able = drivers().filter((d) => d.capabilities.backing && d.capabilities.write).map((d) => d.name);
    expect(able.length).toBeGreaterThan(0);
    const refusal = writeRefusal(byName('raw'), { backing: true, file: 'o.raw' })!;
    expect(refusal.error).toBeInstanceOf(UsageError);
    for (const name of able) expect(refusal.error.message).toContain(name);
    expect(refusal.error.message).toMatch(/^o\.raw: format raw does not support backing files; use /);
  });

  it('requireWriter throws the refusal and passes a capable driver', () => {
    expect(() => requireWriter(byName('qcow'))).toThrow(/writing qcow images is not supported/);
    expect(() => requireWriter(byName('vdi'), { compress: true })).toThrow(/does not support compression/);
    expect(() => requireWriter(byName('qcow2'), { compress: true, backing: true })).not.toThrow();
  });
});
