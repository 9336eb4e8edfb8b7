// The browser host: the built renderer over HTTP and the contract over a WebSocket, on 127.0.0.1 only,
// behind a random access token. No cookie is ever set: browsers send a host's cookies to every port of it,
// so a cookie would hand the token to any other local server the user opens (notebooks, dashboards, tunnels).
//
//   GET /?token=T          303 to /app/K/#token=T, where K is the asset key, an HMAC of T (below). The page
//                          moves T from the fragment into its tab's sessionStorage (per origin and port) and
//                          clears it from the address; the fragment never reaches a server or a Referer.
//   GET /app/K/<asset>     a file of staticDir (/app/K/ is index.html). K opens the page's static files and
//                          nothing else: leaking it (history, a screenshot of the address bar) exposes no data
//                          and no engine access. /<asset>?token=T also works (for tools).
//   GET /export.zip?token=T&run=ID   a run's export (export.run into a temporary folder) as one zip.
//   WS  /ws?token=T        the contract's wire format (main/api/contract.ts): requests in, responses and events
//                          out. Only on this path, only with T, and only from an Origin equal to this server's
//                          own (http://127.0.0.1:PORT), so no other web page can drive it.
//
// No token → 401, a wrong one → 403; a Host header other than 127.0.0.1:PORT (or localhost:PORT, which is
// redirected) → 403, which also defeats DNS rebinding. Every response carries a strict CSP, nosniff,
// no-referrer and frame-ancestors 'none'. Files are served only from inside staticDir.
//
// Every message handler is total: whatever arrives — any depth, size (up to the limit) or type — gets one
// error reply quoting at most a short excerpt, and the host keeps serving (a crash here would take the
// training process down with it). Resources a token holder can use are bounded: sockets, message size,
// requests in progress per socket and bytes of requests in progress overall (further messages wait: the
// server stops reading that socket), and replies a client does not read.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { methodSchemas, type EventMessage, type MethodName, type Response, type Results } from '../api/contract';
import { clipMessage, describeValue, errorText, kindOf, quoteExcerpt } from '../api/excerpt';
import type { EngineService } from '../engine/service';
import { errorKindOf, type ErrorKind } from '../api/errors';
import { writeStoredZip } from './zip-store';

export interface ServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default: 32 random bytes, base64url (256 bits). */
  token?: string;
  /** The built renderer (index.html and its assets). */
  staticDir: string;
  service: Pick<EngineService, 'call' | 'on'>;
  /** Largest WebSocket message accepted; a larger one closes the socket with 1009 (default DEFAULT_MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /** Open WebSockets at once; more are refused with 503 (default DEFAULT_MAX_SOCKETS). */
  maxSockets?: number;
  /** Requests in progress per socket; further messages wait unread (default DEFAULT_MAX_REQUESTS_PER_SOCKET). */
  maxRequestsPerSocket?: number;
  /** Bytes of requests in progress over all sockets; further messages wait unread (default DEFAULT_MAX_IN_FLIGHT_BYTES). */
  maxInFlightBytes?: number;
}

export interface RunningServer {
  /** The page URL, with the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export const HOST = '127.0.0.1';
/** The one path that accepts a WebSocket upgrade. */
export const SOCKET_PATH = '/ws';
/** The page and its assets live under /app/<asset key>/. */
export const APP_PREFIX = '/app/';
/** A run's export as a zip, for the browser (the token is checked like every path outside APP_PREFIX). */
export const EXPORT_ZIP_PATH = '/export.zip';
/**
 * The largest message the contract can need: one classify.upload image at its limit (28,000,000 base64
 * characters, ≈ 20 MB of image; main/api/contract.ts) plus room for the envelope and its name.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 28_000_000 + 64 * 1024;
/** A few tabs or windows of Refit at once, each with one socket. */
export const DEFAULT_MAX_SOCKETS = 16;
/** The UI keeps at most a handful in flight (6 thumbnails at a time); a script waits, it is not refused. */
export const DEFAULT_MAX_REQUESTS_PER_SOCKET = 32;
/** Two uploads at the message limit; a single larger message still runs when nothing else is in progress. */
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** Replies and events waiting for a client that does not read: above this the socket stops being read… */
const PAUSE_BUFFERED_BYTES = 8 * 1024 * 1024;
/** …and above this it is closed. */
const MAX_BUFFERED_BYTES = 128 * 1024 * 1024;
const MIN_TOKEN_LENGTH = 22; // 128 bits in base64url

/** The key of the page's static files for a token: HMAC-SHA256(token, purpose), base64url. Grants nothing else. */
export function assetKey(token: string): string {
  return createHmac('sha256', token).update('refit: static files of the page').digest('base64url');
}

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

function sameSecret(given: string | null | undefined, secret: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

type Access = { ok: true } | { ok: false; status: 401 | 403; message: string };

const NO_TOKEN = 'Refit: this address needs the access token. Open the full URL (with ?token=…) that `npm run serve` printed.';
const WRONG_TOKEN = 'Refit: wrong access token. Open the URL that `npm run serve` printed this time (the token changes at every start).';

/** The token must be in the query (?token=T); there is no cookie. */
function checkToken(url: URL, token: string): Access {
  const given = url.searchParams.get('token');
  if (sameSecret(given, token)) return { ok: true };
  if (given === null) return { ok: false, status: 401, message: NO_TOKEN };
  return { ok: false, status: 403, message: WRONG_TOKEN };
}

/**
 * The request target as a URL of this server, or null unless it is origin-form ("/path?query"). Parsed
 * against the full origin, so "//evil.example/x" stays a path of this server.
 */
function parseTarget(raw: string | undefined, origin: string): URL | null {
  if (!raw || !raw.startsWith('/')) return null;
  try {
    const url = new URL(origin + raw);
    return url.origin === origin ? url : null;
  } catch {
    return null;
  }
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


function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, b) => sum + b.length, 0);
  return data.byteLength;
}

type Checked = { ok: true; id: number; method: MethodName; params: unknown } | { ok: false; id: number; problem: string };

/**
 * The envelope {id, method, params} of a parsed message, checked by hand in a bounded number of steps
 * (nothing here walks into a value). The params are checked by the service against the method's schema.
 */
export function checkRequest(message: unknown): Checked {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return { ok: false, id: -1, problem: `a request must be a JSON object {id, method, params}, got ${kindOf(message)}` };
  }
  const m = message as Record<string, unknown>;
  const problems: string[] = [];
  const rawId = Object.hasOwn(m, 'id') ? m.id : undefined;
  const idOk = typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0;
  if (!idOk) problems.push(rawId === undefined ? 'id is missing (a whole number ≥ 0)' : `id must be a whole number ≥ 0, got ${describeValue(rawId)}`);
  const method = Object.hasOwn(m, 'method') ? m.method : undefined;
  if (method === undefined) problems.push('method is missing');
  else if (typeof method !== 'string') problems.push(`method must be a string, got ${kindOf(method)}`);
  else if (!Object.hasOwn(methodSchemas, method)) problems.push(`unknown method ${quoteExcerpt(method)}`);
  let extra = 0;
  let firstExtra = '';
  for (const key of Object.keys(m)) {
    if (key === 'id' || key === 'method' || key === 'params') continue;
    if (extra++ === 0) firstExtra = key;
  }
  if (extra > 0) problems.push(`unexpected field ${quoteExcerpt(firstExtra)}${extra > 1 ? ` and ${extra - 1} more` : ''} (a request has only id, method and params)`);
  const id = idOk ? rawId : -1;
  if (problems.length > 0) return { ok: false, id, problem: problems.join('; ') };
  return { ok: true, id, method: method as MethodName, params: Object.hasOwn(m, 'params') ? m.params : undefined };
}

interface Queued {
  data: RawData;
  isBinary: boolean;
  bytes: number;
}

/** One WebSocket: messages read but not yet started, and requests in progress. */
interface Connection {
  ws: WebSocket;
  queue: Queued[];
  active: number;
}

const NOT_JSON = 'Refit: a request must be one JSON text message {id, method, params}';

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const token = options.token ?? randomBytes(32).toString('base64url');
  if (token.length < MIN_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) {
    throw new Error(`startServer: the access token must be at least ${MIN_TOKEN_LENGTH} characters of [A-Za-z0-9_-] (128 bits); leave it out to get a random one`);
  }
  const staticInfo = await stat(options.staticDir).catch(() => undefined);
  if (!staticInfo?.isDirectory()) throw new Error(`startServer: ${options.staticDir} is not a folder (build the renderer first: npm run build:renderer)`);
  const root = await realpath(path.resolve(options.staticDir));
  const { service } = options;
  const key = assetKey(token);
  const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
  const maxPerSocket = options.maxRequestsPerSocket ?? DEFAULT_MAX_REQUESTS_PER_SOCKET;
  const maxInFlightBytes = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
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
    const url = parseTarget(req.url, origin());
    // Built from the parsed URL (scheme, host and port are this server's), never from the raw target.
    if (host === 'localhost') return send(res, 307, '', { Location: url ? url.href : `${origin()}/` });
    if (host === 'foreign') return send(res, 403, `Refit: unexpected Host header; open ${origin()}/ with the token printed by npm run serve.`);
    if (!url) return send(res, 400, 'Refit: bad request target.');

    let filePath: string;
    if (url.pathname.startsWith(APP_PREFIX)) {
      // /app/K/<asset>: the page's static files, opened by the asset key.
      const rest = url.pathname.slice(APP_PREFIX.length);
      const slash = rest.indexOf('/');
      const given = slash < 0 ? rest : rest.slice(0, slash);
      if (!sameSecret(given, key)) {
        if (!given) return send(res, 401, NO_TOKEN);
        return send(res, 403, 'Refit: this page address is from another start of the server. Open the URL that `npm run serve` printed this time.');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Refit: only GET and HEAD are served here.', { Allow: 'GET, HEAD' });
      if (slash < 0) return send(res, 308, '', { Location: `${origin()}${APP_PREFIX}${key}/` });
      filePath = rest.slice(slash);
    } else {
      const access = checkToken(url, token);
      if (!access.ok) return send(res, access.status, access.message);
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Refit: only GET and HEAD are served here.', { Allow: 'GET, HEAD' });
      if (url.pathname === EXPORT_ZIP_PATH) return downloadExport(req, res, url);
      // The printed URL: to the page, with the token in the fragment (which the page moves to its tab's storage).
      if (url.pathname === '/' || url.pathname === '/index.html') {
        return send(res, 303, '', { Location: `${origin()}${APP_PREFIX}${key}/#token=${token}` });
      }
      filePath = url.pathname;
    }

    const file = await resolveStatic(root, filePath);
    if (!file) return send(res, 403, 'Refit: that path is outside the app.');
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return send(res, 404, `Refit: ${quoteExcerpt(filePath)} not found.`);
    const isPage = file === path.join(root, 'index.html');
    res.writeHead(200, {
      ...securityHeaders(port),
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': String(info.size),
      'Cache-Control': isPage ? 'no-store' : 'no-cache',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  };

  let exporting = false;
  /**
   * GET /export.zip?token=T&run=ID[&onnx=0]: the run exported (export.run, the same checks and files as
   * the Export screen's) into a temporary folder of the server, sent as one zip, the folder removed.
   */
  const downloadExport = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const runId = url.searchParams.get('run');
    if (!runId) return send(res, 400, 'Refit: /export.zip needs ?run=<run id> (the run to export).');
    const onnx = url.searchParams.get('onnx') !== '0';
    if (exporting) return send(res, 429, 'Refit: another export download is being prepared; try again when it has finished.', { 'Retry-After': '5' });
    exporting = true;
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-download-'));
    try {
      const outDir = path.join(tmp, 'export');
      let exported: Results['export.run'];
      try {
        exported = (await service.call('export.run', { runId, outDir, onnx })) as Results['export.run'];
      } catch (err) {
        const kind = errorKindOf(err);
        const status = kind === 'no-project' || kind === 'no-model' ? 409 : kind === 'not-found' || /no run/i.test(errorText(err)) ? 404 : 400;
        return send(res, status, `Refit: could not export run ${quoteExcerpt(runId)}: ${clipMessage(errorText(err))}`);
      }
      res.writeHead(200, {
        ...securityHeaders(port),
        'Content-Type': 'application/zip',
        'Content-Disposition': `attachment; filename="refit-${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.zip"`,
        'Cache-Control': 'no-store',
      });
      if (req.method === 'HEAD') return res.end();
      await writeStoredZip(res, exported.files.map((f) => ({ name: f.path, file: path.join(outDir, f.path) })));
      res.end();
    } finally {
      exporting = false;
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  };

  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, `Refit: internal error: ${errorText(err)}`);
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES });

  const refuse = (socket: Duplex, status: number, message: string) => {
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${message}\n`);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      socket.on('error', () => socket.destroy());
      if (hostStatus(req) !== 'ok') return refuse(socket, 403, 'Refit: unexpected Host header');
      const url = parseTarget(req.url, origin());
      if (!url || url.pathname !== SOCKET_PATH) return refuse(socket, 404, `Refit: the WebSocket is at ${SOCKET_PATH} only`);
      if (req.headers.origin !== origin()) return refuse(socket, 403, `Refit: the WebSocket is only open to pages of ${origin()}`);
      const access = checkToken(url, token);
      if (!access.ok) return refuse(socket, access.status, access.message);
      if (wss.clients.size >= maxSockets) {
        return refuse(socket, 503, `Refit: too many connections (${maxSockets} open); close other Refit tabs or windows, then reload`);
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    } catch {
      socket.destroy();
    }
  });

  const connections = new Set<Connection>();
  let inFlightBytes = 0;

  /** Reads a socket only while it has room: nothing queued, fewer than the maximum in progress, replies being read. */
  const flow = (conn: Connection) => {
    const { ws } = conn;
    if (ws.readyState !== WebSocket.OPEN) return;
    const hold = conn.queue.length > 0 || conn.active >= maxPerSocket || ws.bufferedAmount > PAUSE_BUFFERED_BYTES;
    if (hold && !ws.isPaused) ws.pause();
    else if (!hold && ws.isPaused) ws.resume();
  };

  const sendText = (conn: Connection, text: string) => {
    const { ws } = conn;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      ws.terminate(); // a client that reads nothing back
      return;
    }
    ws.send(text, () => pump(conn));
    flow(conn);
  };

  const reply = (conn: Connection, response: Response) => {
    let text: string;
    try {
      text = JSON.stringify(response);
    } catch (err) {
      text = JSON.stringify({ id: response.id, ok: false, error: { message: `Refit: the answer could not be encoded (${errorText(err)})` } } satisfies Response);
    }
    sendText(conn, text);
  };

  const fail = (conn: Connection, id: number, message: string, kind?: ErrorKind) =>
    reply(conn, { id, ok: false, error: { message: clipMessage(message), ...(kind ? { kind } : {}) } });

  /** Starts one message: a reply at once when it is not a valid request, else the service call. Never throws. */
  const start = (conn: Connection, queued: Queued) => {
    let id = -1;
    try {
      if (queued.isBinary) return fail(conn, -1, NOT_JSON);
      let message: unknown;
      try {
        message = JSON.parse(rawText(queued.data));
      } catch {
        return fail(conn, -1, NOT_JSON);
      }
      const checked = checkRequest(message);
      id = checked.id;
      if (!checked.ok) return fail(conn, id, `Refit: invalid request — ${checked.problem}`);
      const { bytes } = queued;
      conn.active += 1;
      inFlightBytes += bytes;
      Promise.resolve()
        .then(() => service.call(checked.method, checked.params))
        .then(
          (result) => reply(conn, { id: checked.id, ok: true, result: result ?? null }),
          (err: unknown) => fail(conn, checked.id, errorText(err), errorKindOf(err)),
        )
        .catch(() => undefined)
        .finally(() => {
          conn.active -= 1;
          inFlightBytes -= bytes;
          pumpAll();
        });
    } catch (err) {
      try {
        fail(conn, id, `Refit: internal error while handling a request (${errorText(err)}); the server keeps running`);
      } catch {
        /* the socket is gone */
      }
    }
  };

  /** Starts what a socket has queued, within its own limit, the overall byte budget, and while its client reads. */
  const pump = (conn: Connection) => {
    const { ws } = conn;
    while (conn.queue.length > 0 && conn.active < maxPerSocket && ws.readyState === WebSocket.OPEN && ws.bufferedAmount <= PAUSE_BUFFERED_BYTES) {
      const next = conn.queue[0];
      if (inFlightBytes > 0 && inFlightBytes + next.bytes > maxInFlightBytes) break;
      conn.queue.shift();
      start(conn, next);
    }
    flow(conn);
  };

  const pumpAll = () => {
    for (const conn of connections) if (conn.queue.length > 0 || conn.ws.isPaused) pump(conn);
  };

  wss.on('connection', (ws: WebSocket) => {
    const conn: Connection = { ws, queue: [], active: 0 };
    connections.add(conn);
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      connections.delete(conn);
      conn.queue.length = 0;
    });
    ws.on('message', (data, isBinary) => {
      try {
        conn.queue.push({ data, isBinary, bytes: byteLength(data) });
        pump(conn);
      } catch {
        ws.terminate();
      }
    });
  });

  const unsubscribe = service.on((event, payload) => {
    let text: string;
    try {
      text = JSON.stringify({ event, payload } as EventMessage);
    } catch {
      return;
    }
    for (const conn of connections) sendText(conn, text);
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
