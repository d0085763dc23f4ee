/**
 * Messages of `check`, capped: a crafted table of millions of bad entries would otherwise hold
 * millions of strings (and print them). Counts of corruptions stay exact; only the lines stop.
 * The cap and the closing line are qcow2 check's.
 */
export const MAX_CHECK_MESSAGES = 100_000;
export const MESSAGES_OMITTED = '… further messages omitted (counts stay exact)';

/** Appends `line` to `messages` unless the cap is reached (then the closing line, once). */
export function noteCheckMessage(messages: string[], line: string): void {
  if (messages.length < MAX_CHECK_MESSAGES) messages.push(line);
  else if (messages.length === MAX_CHECK_MESSAGES) messages.push(MESSAGES_OMITTED);
}
