/** `-o help` of create, convert and measure: the output driver's options, read from its schema. */
import { writerByName } from '../formats/capabilities.js';
import { formatOptionHelp, optionFields } from '../formats/shared/option-list.js';
import { isOptionHelp } from '../formats/shared/options.js';

/** Prints the option list and returns true when `-o` asked for it (qemu-img's `-o help`, `-o ?`). */
export function printOptionHelpIfAsked(format: string, options: string | undefined): boolean {
  if (!isOptionHelp(options)) return false;
  const driver = writerByName(format);
  process.stdout.write(formatOptionHelp(driver.name, optionFields(driver.optionsSchema)));
  return true;
}
