/**
 * Image names that are URLs (http://, nbd://, ssh://, qemu's json: pseudo-protocol). qemu-img
 * opens them through its protocol drivers; we read local files only, and say so instead of
 * failing with ENOENT on a file named "http:".
 */
import { UnsupportedFeatureError } from '../../errors.js';

/** scheme://… (RFC 3986 scheme), or qemu's json:{…} */
const URL_LIKE = /^(?:[a-z][a-z0-9+.-]*:\/\/|json:\{)/i;

export function isUrl(name: string): boolean {
  return URL_LIKE.test(name);
}

/** Throws when `name` (given for `what`: image, output, backing file) is a URL. */
export function refuseUrl(name: string, what = 'image'): void {
  if (!isUrl(name)) return;
  if (/^file:\/\//i.test(name)) {
    throw new UnsupportedFeatureError(`${what} '${name}' is a file:// URL; give the plain path (${decodeURIComponent(name.slice(7))}) instead`);
  }
  throw new UnsupportedFeatureError(`${what} '${name}' is a URL: guestkit reads and writes local files only (URLs are not supported yet); ${what === 'output' ? 'write a local file, then copy it' : 'copy the image to a local file first'}`);
}
