// The browser client at `/`: the files `vite build` wrote to web/dist. Only `GET /` (index.html)
// and the files of web/dist/assets are served; every other path keeps the API's JSON 404.
//
// Caching: the assets' names carry a hash of their content, so they never change and are cached
// for a year (`immutable`); index.html names the current ones, so browsers revalidate it on every
// load (`no-cache`, with an ETag). index.html gets a strict Content-Security-Policy: scripts,
// styles and connections from this origin only (the WebSocket included), nothing inline.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

export interface WebRoutesOptions {
  /** The directory `vite build` wrote (web/dist). */
  root: string;
  /** PUBLIC_URL: when set, the WebSocket origin the policy allows is derived from it. */
  publicUrl: string;
}

/** Where the build is in this checkout: web/dist beside the package.json above this file. */
export function defaultWebRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return path.join(dir, 'web', 'dist');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.webmanifest': 'application/manifest+json',
};

/** A file name Vite writes into assets/: no separators, no leading dot. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}$/;
/** What a Host header may hold to be echoed into the policy (name or address, and port). */
const HOST = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The Content-Security-Policy of index.html; `host` is the request's Host header. */
export function contentSecurityPolicy(host: string | undefined, publicUrl: string): string {
  let sockets = '';
  if (publicUrl) {
    const url = new URL(publicUrl);
    sockets = ` ${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}`;
  } else if (host !== undefined && HOST.test(host)) {
    sockets = ` ws://${host} wss://${host}`;
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${sockets}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const NOT_BUILT = `The browser client is not built yet.

Build it with:

    npm run build:web

(npm install and npm start build it too), then reload this page. The HTTP API and the WebSocket
work without it: see README.md.
`;

export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, o) => {
  const hidden = { schema: { hide: true } } as const;

  app.get('/', hidden, async (request, reply) => {
    let html: Buffer;
    try {
      html = await fs.promises.readFile(path.join(o.root, 'index.html'));
    } catch {
      request.log.warn({ root: o.root }, 'web client not built: GET / explains how to build it');
      return reply
        .code(503)
        .header('content-type', 'text/plain; charset=utf-8')
        .header('retry-after', '30')
        .send(NOT_BUILT);
    }
    const etag = `"${createHash('sha256').update(html).digest('base64url').slice(0, 27)}"`;
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('etag', etag)
      .header('content-security-policy', contentSecurityPolicy(request.headers.host, o.publicUrl))
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin');
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.send(html);
  });

  app.get<{ Params: { file: string } }>('/assets/:file', hidden, async (request, reply) => {
    const { file } = request.params;
    const type = TYPES[path.extname(file)];
    if (!ASSET_NAME.test(file) || type === undefined) return notFound(request, reply);
    let body: Buffer;
    try {
      body = await fs.promises.readFile(path.join(o.root, 'assets', file));
    } catch {
      return notFound(request, reply);
    }
    return reply.header('content-type', type).header('cache-control', IMMUTABLE).send(body);
  });
};

function notFound(_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}
