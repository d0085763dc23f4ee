/**
 * Random `-o` option sets for a driver, read from its zod schema (as `-o help` lists them):
 * enumerations, booleans and a few sizes, so tests that vary options follow the schema as it grows.
 */
import fc from 'fast-check';
import { optionFields } from '../../src/formats/shared/option-list.js';
import type { FormatDriver } from '../../src/formats/types.js';

const MiB = 1024 * 1024;
const SIZES_BY_OPTION: Record<string, number[]> = {
  cluster_size: [512, 4096, 65536, 2 * MiB],
  // Valid for some formats only (VHDX takes 1–256 MiB): refusals are part of what is tested.
  block_size: [4096, 65536, MiB, 2 * MiB, 8 * MiB],
  log_size: [MiB, 2 * MiB],
  refcount_bits: [1, 2, 8, 16, 64],
};

export function optionsFor(driver: FormatDriver): fc.Arbitrary<Record<string, unknown>> {
  const arbs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of optionFields(driver.optionsSchema)) {
    if (f.name.startsWith('backing_')) continue; // a backing file is another test's subject
    if (f.values) arbs[f.name] = fc.constantFrom(...f.values);
    else if (f.type === 'boolean') arbs[f.name] = fc.boolean();
    else if (SIZES_BY_OPTION[f.name]) arbs[f.name] = fc.constantFrom(...SIZES_BY_OPTION[f.name]);
    // Free text (UUIDs, versions) does not change the layout.
  }
  return fc.record(arbs, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
}
