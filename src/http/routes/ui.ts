/**
 * The dashboard at `/ui`: static files only, served by the API itself (no second server, no build).
 * The page is Preact + htm as plain ES modules, straight from the installed packages (an import map
 * names them), with dagre laying out the graphs. Nothing is compiled: what is in `src/ui/` is what
 * the browser runs.
 *
 * The page and its scripts carry no data (they are the package's own files), so they are served
 * without a token; every piece of data the page shows comes from the API's own routes, with the same
 * bearer token as any client (the page asks for it on a 401 and keeps it in the tab's
 * sessionStorage). The Content-Security-Policy lets the page run only these files and talk only to
 * this origin; artifacts are shown as text, never rendered as HTML.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { httpError } from '../errors.ts';

const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));
const require = createRequire(import.meta.url);

/** The root of an installed package (found from its entry point: not every package exports its package.json). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the package directory of ${name}`);
    dir = up;
  }
}

/** The browser's module names (the import map in index.html) and the package files behind them. */
const VENDOR: Record<string, string> = {
  'preact.mjs': join(packageDir('preact'), 'dist', 'preact.mjs'),
  'preact-hooks.mjs': join(packageDir('preact'), 'hooks', 'dist', 'hooks.mjs'),
  'htm.mjs': join(packageDir('htm'), 'dist', 'htm.mjs'),
  'dagre.mjs': join(packageDir('@dagrejs/dagre'), 'dist', 'dagre.esm.js'),
};

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  html: 'text/html; charset=utf-8',
};

interface Shell {
  html: string;
  csp: string;
}

/** index.html, and a policy that allows its one inline script (the import map) by hash. */
function loadShell(): Shell {
  const html = readFileSync(join(UI_DIR, 'index.html'), 'utf8');
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1];
  if (map === undefined) throw new Error('src/ui/index.html has no import map');
  const hash = createHash('sha256').update(map, 'utf8').digest('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

export function registerUiRoutes(app: FastifyInstance): void {
  const shell = loadShell();

  const sendShell = (reply: FastifyReply): FastifyReply =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', shell.csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(shell.html);

  app.get('/ui', async (_req, reply) => sendShell(reply));

  // Scripts and styles of the page; anything else under /ui is a page of the app (client routing).
  app.get<{ Params: { '*': string } }>('/ui/*', async (req, reply) => {
    const rest = req.params['*'];
    const file = rest.startsWith('vendor/') ? VENDOR[rest.slice('vendor/'.length)] : rest.startsWith('assets/') ? assetPath(rest.slice('assets/'.length)) : undefined;
    if (rest.startsWith('vendor/') || rest.startsWith('assets/')) {
      if (file === undefined) throw httpError('NOT_FOUND', `no dashboard file ${rest.slice(0, 200)}`);
      let body: Buffer;
      try {
        body = await readFile(file);
      } catch {
        throw httpError('NOT_FOUND', `no dashboard file ${rest.slice(0, 200)}`);
      }
      const ext = file.slice(file.lastIndexOf('.') + 1);
      return reply
        .header('content-type', TYPES[ext] ?? 'application/octet-stream')
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(body);
    }
    return sendShell(reply);
  });
}

/** A file under src/ui/ (not index.html), or undefined for anything that tries to leave it. */
function assetPath(rel: string): string | undefined {
  if (!/^[\w./-]+\.(js|css|svg)$/.test(rel)) return undefined;
  const full = normalize(join(UI_DIR, rel));
  return full.startsWith(UI_DIR.endsWith(sep) ? UI_DIR : UI_DIR + sep) ? full : undefined;
}
