import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
};

export interface WebAsset {
  contentType: string;
  body: Buffer;
}

export const WEB_ROOT = resolve(fileURLToPath(new URL('../../../web', import.meta.url)));

/** A page's line `<!--#include file="NAME.html" -->`, with its indent. */
const INCLUDE_LINE = /^([ \t]*)<!--#include file="([a-z0-9-]+\.html)" -->\n/gm;

/**
 * The page with each include line replaced by web/partials/NAME.html, every
 * line indented as the include line was: the head every page shares is
 * written once. An include of a partial that is not there throws.
 */
export function withPartials(html: string, partialsDir: string): string {
  return html.replace(INCLUDE_LINE, (_line, indent: string, name: string) =>
    readFileSync(join(partialsDir, name), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => `${indent}${line}\n`)
      .join(''),
  );
}

/**
 * The browser pages: HTML (with its partials, see withPartials) and CSS from web/public, and each web/src/pages/NAME.ts
 * bundled (with socket.io-client and the protocol) to /assets/NAME.js.
 * Bundled once at start-up, in memory: nothing to build by hand, nothing stale.
 */
export async function loadWebAssets(root = WEB_ROOT): Promise<Map<string, WebAsset>> {
  const assets = new Map<string, WebAsset>();
  const publicDir = join(root, 'public');
  if (existsSync(publicDir)) {
    for (const file of readdirSync(publicDir)) {
      const type = CONTENT_TYPES[extname(file)];
      if (!type) continue;
      const body = file.endsWith('.html')
        ? Buffer.from(withPartials(readFileSync(join(publicDir, file), 'utf8'), join(root, 'partials')))
        : readFileSync(join(publicDir, file));
      assets.set(`/${file}`, { contentType: type, body });
      if (file.endsWith('.html')) assets.set(`/${file.slice(0, -'.html'.length)}`, { contentType: type, body });
    }
  }
  const pagesDir = join(root, 'src', 'pages');
  const entries = existsSync(pagesDir) ? readdirSync(pagesDir).filter((f) => f.endsWith('.ts')) : [];
  if (entries.length > 0) {
    const result = await build({
      entryPoints: entries.map((f) => join(pagesDir, f)),
      bundle: true,
      write: false,
      outdir: '/assets',
      format: 'esm',
      target: 'es2022',
      platform: 'browser',
      minify: true,
      sourcemap: false,
      logLevel: 'silent',
    });
    for (const file of result.outputFiles) {
      const type = CONTENT_TYPES[extname(file.path)];
      if (type) assets.set(file.path, { contentType: type, body: Buffer.from(file.contents) });
    }
    // A service worker controls the paths under its own: the ticket page's is served from the root.
    const serviceWorker = assets.get('/assets/ticket-sw.js');
    if (serviceWorker) assets.set('/ticket-sw.js', serviceWorker);
  }
  return assets;
}
