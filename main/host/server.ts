// The browser host: the built renderer over HTTP and the contract over a WebSocket, on 127.0.0.1 only,
// behind a random access token.
//
//   GET /?token=T        the page; sets an HttpOnly SameSite=Strict cookie with the token so that the
//                        page's assets (and its WebSocket) are allowed without the token in their URLs
//   GET /<asset>         a file of staticDir, with the cookie (or ?token=T)
//   WS  /ws              the contract's wire format (main/api/contract.ts): requests in, responses and
//                        events out; the upgrade needs the token (cookie or ?token=T) and an Origin equal
//                        to this server's own (http://127.0.0.1:PORT), so no other web page can drive it
//
// No token → 401, a wrong one → 403; a Host header other than 127.0.0.1:PORT (or localhost:PORT, which
// is redirected) → 403, which also defeats DNS-rebinding. Every response carries a strict CSP,
// nosniff, no-referrer and frame-ancestors 'none'. Files are served only from inside staticDir.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { requestSchema, type EventMessage, type Response } from '../api/contract';
import type { EngineService } from '../engine/service';

export interface ServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default: 32 random bytes, base64url (256 bits). */
  token?: string;
  /** The built renderer (index.html and its assets). */
  staticDir: string;
  service: Pick<EngineService, 'call' | 'on'>;
  /** Largest WebSocket message accepted (default 32 MiB: room for classify.upload batches). */
  maxMessageBytes?: number;
}

export interface RunningServer {
  /** The page URL, with the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export const HOST = '127.0.0.1';
export const TOKEN_COOKIE = 'refit_token';
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const MIN_TOKEN_LENGTH = 22; // 128 bits in base64url

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    `connect-src 'self' ws://${HOST}:${port}`,
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(port: number): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(port),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

type Access = { ok: true; via: 'query' | 'cookie' } | { ok: false; status: 401 | 403; message: string };

function checkToken(req: IncomingMessage, url: URL, token: string): Access {
  const fromQuery = url.searchParams.get('token') ?? undefined;
  const fromCookie = cookieValue(req.headers.cookie, TOKEN_COOKIE);
  if (sameToken(fromQuery, token)) return { ok: true, via: 'query' };
  if (sameToken(fromCookie, token)) return { ok: true, via: 'cookie' };
  if (fromQuery === undefined && fromCookie === undefined) {
    return { ok: false, status: 401, message: 'Refit: this address needs the access token. Open the full URL (with ?token=…) that `npm run serve` printed.' };
  }
  return { ok: false, status: 403, message: 'Refit: wrong access token. Open the URL that `npm run serve` printed this time (the token changes at every start).' };
}

/** The file under `root` for a URL path, or null when it would leave `root` (after following symlinks). */
async function resolveStatic(root: string, pathname: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const relative = decoded === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
  const candidate = path.resolve(root, relative);
  if (candidate !== root && !candidate.startsWith(root + path.sep)) return null;
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return candidate; // missing: the caller answers 404
  }
  return real === root || real.startsWith(root + path.sep) ? real : null;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const token = options.token ?? randomBytes(32).toString('base64url');
  if (token.length < MIN_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) {
    throw new Error(`startServer: the access token must be at least ${MIN_TOKEN_LENGTH} characters of [A-Za-z0-9_-] (128 bits); leave it out to get a random one`);
  }
  const staticInfo = await stat(options.staticDir).catch(() => undefined);
  if (!staticInfo?.isDirectory()) throw new Error(`startServer: ${options.staticDir} is not a folder (build the renderer first: npm run build:renderer)`);
  const root = await realpath(path.resolve(options.staticDir));
  const { service } = options;
  let port = 0;
  const origin = () => `http://${HOST}:${port}`;

  /** Host must be this server; 'localhost' is redirected to the 127.0.0.1 address (the only allowed Origin). */
  const hostStatus = (req: IncomingMessage): 'ok' | 'localhost' | 'foreign' => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (host === `${HOST}:${port}`) return 'ok';
    if (host === `localhost:${port}`) return 'localhost';
    return 'foreign';
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...securityHeaders(port), 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };

  const handleHttp = async (req: IncomingMessage, res: ServerResponse) => {
    const host = hostStatus(req);
    if (host === 'localhost') return send(res, 307, '', { Location: `${origin()}${req.url ?? '/'}` });
    if (host === 'foreign') return send(res, 403, `Refit: unexpected Host header; open ${origin()}/ with the token printed by npm run serve.`);
    const url = new URL(req.url ?? '/', origin());
    const access = checkToken(req, url, token);
    if (!access.ok) return send(res, access.status, access.message);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Refit: only GET and HEAD are served here.', { Allow: 'GET, HEAD' });

    const file = await resolveStatic(root, url.pathname);
    if (!file) return send(res, 403, 'Refit: that path is outside the app.');
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return send(res, 404, `Refit: ${url.pathname} not found.`);
    const isPage = file === path.join(root, 'index.html');
    const headers: Record<string, string> = {
      ...securityHeaders(port),
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': String(info.size),
      'Cache-Control': isPage ? 'no-store' : 'no-cache',
    };
    // The cookie is what lets the page's assets and WebSocket in without the token in their URLs.
    if (access.via === 'query') headers['Set-Cookie'] = `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  };

  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, `Refit: internal error: ${(err as Error).message}`);
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES });

  const refuse = (socket: Duplex, status: number, message: string) => {
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${message}\n`);
  };

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (hostStatus(req) !== 'ok') return refuse(socket, 403, 'Refit: unexpected Host header');
    if (req.headers.origin !== origin()) return refuse(socket, 403, `Refit: the WebSocket is only open to pages of ${origin()}`);
    const url = new URL(req.url ?? '/', origin());
    const access = checkToken(req, url, token);
    if (!access.ok) return refuse(socket, access.status, access.message);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const reply = (ws: WebSocket, response: Response) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(response));
  };

  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      let message: unknown;
      try {
        if (isBinary) throw new Error('binary');
        message = JSON.parse(rawText(data));
      } catch {
        return reply(ws, { id: -1, ok: false, error: { message: 'Refit: a request must be one JSON text message {id, method, params}' } });
      }
      const rawId = (message as { id?: unknown } | null)?.id;
      const id = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 0 ? rawId : -1;
      const parsed = requestSchema.safeParse(message);
      if (!parsed.success) {
        const method = (message as { method?: unknown } | null)?.method;
        const detail = parsed.error.issues
          .map((i) => (i.path[0] === 'method' ? `unknown method ${JSON.stringify(method)}` : `${i.path.join('.') || 'request'}: ${i.message}`))
          .join('; ');
        return reply(ws, { id, ok: false, error: { message: `Refit: invalid request — ${detail}` } });
      }
      const { method, params } = parsed.data;
      service.call(method, params).then(
        (result) => reply(ws, { id, ok: true, result: result ?? null }),
        (err: unknown) => reply(ws, { id, ok: false, error: { message: err instanceof Error ? err.message : String(err) } }),
      );
    });
  });

  const unsubscribe = service.on((event, payload) => {
    const text = JSON.stringify({ event, payload } satisfies EventMessage);
    for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(text);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    url: `${origin()}/?token=${token}`,
    port,
    token,
    close() {
      closing ??= new Promise<void>((resolve) => {
        unsubscribe();
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
