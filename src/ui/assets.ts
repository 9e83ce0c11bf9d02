import { readFileSync } from 'node:fs';

/**
 * The page's three files, read once when the page is switched on and served from memory: no build
 * step at run time, nothing fetched from outside (the page must work in an air-gapped cluster).
 */
export interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

const FILES = {
  '/ui/': ['index.html', 'text/html; charset=utf-8'],
  '/ui/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/ui/app.css': ['app.css', 'text/css; charset=utf-8'],
  '/ui/favicon.svg': ['favicon.svg', 'image/svg+xml'],
} as const;

export function loadAssets(): ReadonlyMap<string, Asset> {
  const dir = new URL('./static/', import.meta.url);
  return new Map(Object.entries(FILES).map(([path, [file, type]]) => [path, { body: readFileSync(new URL(file, dir)), type }]));
}

/**
 * Only the page's own files run; no inline script or style, no framing, no form posts elsewhere,
 * and fetches only to this origin.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
