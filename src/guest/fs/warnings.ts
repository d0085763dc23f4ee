/** Warnings of a mounted filesystem: each said once, and a bounded list however damaged the filesystem is. */
export const MAX_WARNINGS = 1000;

export function warn(list: string[], message: string): void {
  if (list.length > MAX_WARNINGS || list.includes(message)) return;
  list.push(list.length === MAX_WARNINGS ? `more than ${MAX_WARNINGS} warnings; the rest are not shown` : message);
}
