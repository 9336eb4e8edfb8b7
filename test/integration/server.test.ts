// The browser host's server with the real engine service: 127.0.0.1 only, token on every request and never
// in a cookie, the page under its asset key, security headers, no path traversal, WebSocket only on /ws and
// guarded by token and Origin, the wire format, and every limit a token holder meets.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { Response } from '../../main/api/contract';
import { MAX_ERROR_MESSAGE_CHARS } from '../../main/api/excerpt';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { assetKey, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_SOCKETS, startServer, type RunningServer, type ServerOptions } from '../../main/host/server';
import { hostileMessages } from '../fixtures/hostile-messages';

let tmp: string;
let staticDir: string;
let service: EngineService;
let server: RunningServer;

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Every response header block seen by this file (HTTP responses and WebSocket upgrades), for the cookie check. */
const seenHeaders: http.IncomingHttpHeaders[] = [];

/** A raw request (fetch would normalise `..` away and forbid setting Host). */
function request(port: number, pathAndQuery: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathAndQuery, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        seenHeaders.push(res.headers);
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
const get = (pathAndQuery: string, headers: Record<string, string> = {}) => request(server.port, pathAndQuery, headers);

const origin = (s: RunningServer = server) => `http://127.0.0.1:${s.port}`;
const wsUrl = (s: RunningServer = server, token = s.token) => `ws://127.0.0.1:${s.port}/ws?token=${token}`;

/** Opens a socket; resolves with it when open, rejects with the HTTP status when refused. */
function connect(url: string, headers: Record<string, string> = {}, originHeader: string | null = url.replace(/^ws:\/\/([^/]+).*$/, 'http://$1')): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(originHeader ? { origin: originHeader } : {}) });
    ws.once('upgrade', (res) => seenHeaders.push(res.headers));
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      seenHeaders.push(res.headers);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new Error(`refused with ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').trim()}`)));
    });
    ws.once('error', reject);
  });
}

/** Collects every message of a socket. */
function inbox(ws: WebSocket) {
  const messages: any[] = [];
  const waiters: { match: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    messages.push(m);
    for (const w of [...waiters]) if (w.match(m)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  return {
    messages,
    next(match: (m: any) => boolean, timeoutMs = 30_000): Promise<any> {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms (socket ${ws.readyState === WebSocket.OPEN ? 'open' : 'closed'})`)), timeoutMs);
        waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}

const closed = (ws: WebSocket) => new Promise<number>((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve(ws.readyState) : ws.once('close', (code) => resolve(code))));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-server-'));
  staticDir = path.join(tmp, 'renderer');
  await mkdir(path.join(staticDir, 'assets'), { recursive: true });
  await writeFile(path.join(staticDir, 'index.html'), '<!doctype html><title>Refit</title><script type="module" src="./assets/app.js"></script>');
  await writeFile(path.join(staticDir, 'assets', 'app.js'), 'console.log("refit");');
  await writeFile(path.join(tmp, 'secret.txt'), 'TOP SECRET');
  await symlink(path.join(tmp, 'secret.txt'), path.join(staticDir, 'link.txt'));
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'recent.json') });
  server = await startServer({ port: 0, staticDir, service });
});

afterAll(async () => {
  await server?.close();
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('browser host server: HTTP', () => {
  it('listens on a random port of 127.0.0.1 with a ≥128-bit token in its URL', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses requests without the token (401) or with a wrong one (403), with security headers; a cookie opens nothing', async () => {
    const none = await get('/');
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/access token/);
    expect(none.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await get('/assets/app.js')).status).toBe(401);
    expect((await get('/?token=wrong')).status).toBe(403);
    // The old cookie (or any cookie) is not a credential any more.
    expect((await get('/', { cookie: `refit_token=${server.token}` })).status).toBe(401);
    expect((await get('/assets/app.js', { cookie: `refit_token=${server.token}` })).status).toBe(401);
  });

  it('sends the printed URL to the page under its asset key, with the token in the fragment only', async () => {
    const key = assetKey(server.token);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain(server.token);
    const printed = await get(`/?token=${server.token}`);
    expect(printed.status).toBe(303);
    expect(printed.headers.location).toBe(`${origin()}/app/${key}/#token=${server.token}`);
    expect((await get(`/index.html?token=${server.token}`)).headers.location).toBe(printed.headers.location);

    const page = await get(`/app/${key}/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>Refit</title>');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    const csp = page.headers['content-security-policy']!;
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      `connect-src 'self' ws://127.0.0.1:${server.port}`,
      "img-src 'self' data: blob:",
      "style-src 'self' 'unsafe-inline'",
      "object-src 'none'",
      "frame-ancestors 'none'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');

    // The page's relative assets load under the key; the key is checked; the token in the query works too.
    const asset = await get(`/app/${key}/assets/app.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.body).toBe('console.log("refit");');
    expect((await get(`/assets/app.js?token=${server.token}`)).body).toBe('console.log("refit");');
    expect((await get(`/app/${key}/assets/missing.js`)).status).toBe(404);
    expect((await get(`/app/${'x'.repeat(43)}/assets/app.js`)).status).toBe(403);
    expect((await get(`/app/${key.slice(0, -1)}/`)).status).toBe(403);
    expect((await get('/app/')).status).toBe(401);
    expect((await get('/app//assets/app.js')).status).toBe(401);
    const bare = await get(`/app/${key}`);
    expect([bare.status, bare.headers.location]).toEqual([308, `${origin()}/app/${key}/`]);
    // The token is not the asset key, and the key is not a token.
    expect((await get(`/app/${server.token}/`)).status).toBe(403);
    expect((await get(`/assets/app.js?token=${key}`)).status).toBe(403);
    // Only GET and HEAD.
    expect((await request(server.port, `/app/${key}/`, {}, 'POST')).status).toBe(405);
    const head = await request(server.port, `/app/${key}/`, {}, 'HEAD');
    expect([head.status, head.body]).toEqual([200, '']);
  });

  it('never serves files outside its folder', async () => {
    const key = assetKey(server.token);
    const attempts = ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/link.txt', `/${encodeURIComponent(path.join(tmp, 'secret.txt'))}`];
    for (const attempt of attempts) {
      for (const target of [`${attempt}?token=${server.token}`, `/app/${key}${attempt}`]) {
        const res = await get(target);
        expect([403, 404], target).toContain(res.status);
        expect(res.body).not.toContain('TOP SECRET');
      }
    }
  });

  it('refuses a foreign Host header; redirects localhost to 127.0.0.1 with a Location built from the parsed URL', async () => {
    expect((await get(`/?token=${server.token}`, { host: `evil.example:${server.port}` })).status).toBe(403);
    const localhost = { host: `localhost:${server.port}` };
    const redirect = await get(`/?token=${server.token}`, localhost);
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe(`${origin()}/?token=${server.token}`);
    // A target that would be another host if copied raw stays a path of this server.
    expect((await get('//evil.example/x', localhost)).headers.location).toBe(`${origin()}//evil.example/x`);
    expect((await get('/a/../b/%0d%0aSet-Cookie:%20x=1?q="<>', localhost)).headers.location).toBe(`${origin()}/b/%0d%0aSet-Cookie:%20x=1?q=%22%3C%3E`);
    // An absolute-form target is not copied at all.
    const absolute = await get('http://evil.example/steal', localhost);
    expect([absolute.status, absolute.headers.location]).toEqual([307, `${origin()}/`]);
    // From the server itself: a target not in origin-form is a bad request.
    expect((await get('http://evil.example/steal')).status).toBe(400);
  });
});

describe('browser host server: WebSocket', () => {
  it('refuses sockets without the token, with a wrong one, with a cookie only, from a foreign origin, or off /ws', async () => {
    const base = `ws://127.0.0.1:${server.port}`;
    await expect(connect(`${base}/ws`)).rejects.toThrow(/401/);
    await expect(connect(`${base}/ws?token=wrong`)).rejects.toThrow(/403/);
    await expect(connect(`${base}/ws`, { cookie: `refit_token=${server.token}` })).rejects.toThrow(/401/);
    await expect(connect(wsUrl(), {}, 'http://evil.example')).rejects.toThrow(/403/);
    await expect(connect(wsUrl(), {}, `http://localhost:${server.port}`)).rejects.toThrow(/403/);
    await expect(connect(wsUrl(), {}, null)).rejects.toThrow(/403/); // no Origin at all
    // The upgrade is accepted on the socket's own path only, whatever the token.
    for (const p of ['/', '/ws/', '/ws/x', '/wsx', `/app/${assetKey(server.token)}/ws`, '/assets/app.js', '//ws']) {
      await expect(connect(`${base}${p}?token=${server.token}`), p).rejects.toThrow(/404: Refit: the WebSocket is at \/ws only/);
    }
  });

  it('speaks the contract over the WebSocket: results, errors and broadcast events', async () => {
    const a = await connect(wsUrl());
    const b = await connect(wsUrl());
    const inA = inbox(a);
    const inB = inbox(b);

    a.send(JSON.stringify({ id: 1, method: 'app.info', params: {} }));
    const info = (await inA.next((m) => m.id === 1)) as Extract<Response, { ok: true }>;
    expect(info.ok).toBe(true);
    expect(info.result).toMatchObject({ host: 'browser', project: null });

    a.send(JSON.stringify({ id: 2, method: 'no.such.method', params: {} }));
    expect(await inA.next((m) => m.id === 2)).toEqual({ id: 2, ok: false, error: { message: 'Refit: invalid request — unknown method "no.such.method"' } });
    a.send(JSON.stringify({ id: 3, method: 'dataset.images', params: { className: 'x' } }));
    expect((await inA.next((m) => m.id === 3)).error.message).toMatch(/dataset\.images: invalid request — offset/);
    a.send('this is not json');
    expect(await inA.next((m) => m.id === -1)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/JSON/) } });
    a.send(JSON.stringify({ id: 4, method: 'runs.list', params: {} }));
    expect((await inA.next((m) => m.id === 4)).error.message).toMatch(/No project is open/);
    a.send(JSON.stringify({ id: 6, method: 'training.start', params: { config: { backbone: 'resnet18', weights: 'none', mode: 'head', head: { kind: 'linear' }, epochs: 5, batchSize: 100_000, valSplit: 0.2, seed: 1, augment: false, patience: 3, classWeights: false } } }));
    expect((await inA.next((m) => m.id === 6)).error.message).toContain('config.batchSize: must be at most 1024');

    // Opening a project scans it: the scan.progress event reaches every socket; the response only the caller.
    a.send(JSON.stringify({ id: 5, method: 'project.open', params: { dir: path.join(tmp, 'project'), create: true } }));
    expect((await inA.next((m) => m.id === 5)).ok).toBe(true);
    expect(await inA.next((m) => m.event === 'scan.progress')).toEqual({ event: 'scan.progress', payload: { done: 0, total: 0 } });
    expect(await inB.next((m) => m.event === 'scan.progress')).toEqual({ event: 'scan.progress', payload: { done: 0, total: 0 } });
    expect(inB.messages.some((m) => m.id === 5)).toBe(false);
    a.close();
    b.close();
  });

  it('answers every hostile message with one short error and keeps serving', async () => {
    const ws = await connect(wsUrl());
    const box = inbox(ws);
    const hostile = hostileMessages(1000);
    expect(hostile.length).toBeGreaterThan(150);
    const started = Date.now();
    for (const [i, h] of hostile.entries()) {
      ws.send(h.data);
      const answer = await box.next((_m) => box.messages.length > i, 15_000).catch((err) => {
        throw new Error(`${h.name}: ${(err as Error).message}`);
      });
      const got = box.messages[i];
      expect(answer, h.name).toBeDefined();
      expect(got.ok, h.name).toBe(false);
      expect(got.id, h.name).toBe(h.id);
      expect(typeof got.error.message, h.name).toBe('string');
      expect(got.error.message.length, h.name).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS + 80);
      expect(JSON.stringify(got).length, h.name).toBeLessThan(2048);
    }
    const elapsed = Date.now() - started;
    // The message that overflowed the stack, and the 5 MB name that came back whole, in particular.
    const byName = (name: string) => box.messages[hostile.findIndex((h) => h.name === name)];
    expect(byName('method: deep array').error.message).toBe('Refit: invalid request — method must be a string, got an array');
    expect(byName('method: huge string').error.message).toMatch(/^Refit: invalid request — unknown method "A{80}…" \(5,242,880 characters\)$/);
    expect(byName('training.start: numbers out of range').error.message).toMatch(/config\.inputSize: must be at most 1024 pixels.*config\.epochs: must be at most 10000/);
    // Exactly one reply each, and the host still answers.
    ws.send(JSON.stringify({ id: 1, method: 'app.info', params: {} }));
    expect((await box.next((m) => m.id === 1)).ok).toBe(true);
    expect(box.messages).toHaveLength(hostile.length + 1);
    expect(elapsed).toBeLessThan(60_000);
    ws.close();
  });

  it('admits at most DEFAULT_MAX_SOCKETS sockets at once; a refused one gets 503 with a clear message', async () => {
    const open: WebSocket[] = [];
    for (let i = 0; i < DEFAULT_MAX_SOCKETS; i++) open.push(await connect(wsUrl()));
    await expect(connect(wsUrl())).rejects.toThrow(/503: Refit: too many connections \(16 open\); close other Refit tabs/);
    open.pop()!.close();
    await new Promise((r) => setTimeout(r, 100));
    open.push(await connect(wsUrl())); // room again
    for (const ws of open) ws.close();
    await Promise.all(open.map(closed));
  });

  it('serves a flood of 16 sockets × 250 mixed messages, bounded in time and memory', async () => {
    const SOCKETS = DEFAULT_MAX_SOCKETS;
    const PER_SOCKET = 250;
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const deep = hostileMessages(0, 64 * 1024).map((h) => h.data);
    const answered = await Promise.all(
      Array.from({ length: SOCKETS }, async (_, s) => {
        const ws = await connect(wsUrl());
        let n = 0;
        const all = new Promise<void>((resolve) =>
          ws.on('message', () => {
            if (++n === PER_SOCKET) resolve();
          }),
        );
        for (let i = 0; i < PER_SOCKET; i++) {
          const kind = (i + s) % 4;
          if (kind === 0) ws.send(JSON.stringify({ id: i, method: 'app.info', params: {} }));
          else if (kind === 1) ws.send(JSON.stringify({ id: i, method: 'fs.listDir', params: { dir: tmp } }));
          else ws.send(deep[(i * 7 + s) % deep.length]);
        }
        await all;
        ws.close();
        return n;
      }),
    );
    clearInterval(sampler);
    const seconds = (Date.now() - started) / 1000;
    const growthMb = (peakRss - rssBefore) / 1024 / 1024;
    console.log(`flood: ${SOCKETS} sockets × ${PER_SOCKET} messages answered in ${seconds.toFixed(1)} s; RSS ${(rssBefore / 1024 / 1024).toFixed(0)} MB → peak ${(peakRss / 1024 / 1024).toFixed(0)} MB`);
    expect(answered).toEqual(Array(SOCKETS).fill(PER_SOCKET));
    expect(seconds).toBeLessThan(90);
    expect(growthMb).toBeLessThan(400);
    // Still serving.
    const ws = await connect(wsUrl());
    const box = inbox(ws);
    ws.send(JSON.stringify({ id: 7, method: 'app.info', params: {} }));
    expect((await box.next((m) => m.id === 7)).ok).toBe(true);
    ws.close();
  });

  it('no response of this server ever set a cookie, and no header but a redirect Location carries the token', () => {
    expect(seenHeaders.length).toBeGreaterThan(40);
    for (const headers of seenHeaders) {
      expect(headers['set-cookie']).toBeUndefined();
      const { location, ...others } = headers;
      expect(JSON.stringify(others)).not.toContain(server.token);
      // Only the printed URL's redirect (token in the fragment) and localhost's (the same query) carry it.
      if (location?.includes(server.token)) expect(location).toMatch(new RegExp(`(#|\\?)token=${server.token}$`));
    }
  });
});

describe('browser host server: limits', () => {
  /** A server in front of a fake service whose calls wait until released. */
  async function gatedServer(options: Partial<ServerOptions>) {
    const gates: { method: string; params: any; release: () => void }[] = [];
    let active = 0;
    let peak = 0;
    const fake = {
      call: (method: string, params: unknown) =>
        new Promise<unknown>((resolve) => {
          active++;
          peak = Math.max(peak, active);
          gates.push({ method, params, release: () => (active--, resolve({ echo: method })) });
        }),
      on: () => () => {},
    } as unknown as ServerOptions['service'];
    const s = await startServer({ staticDir, service: fake, ...options });
    return { s, gates, peak: () => peak, active: () => active };
  }

  const until = async (what: () => boolean, timeoutMs = 10_000) => {
    const end = Date.now() + timeoutMs;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('runs at most maxRequestsPerSocket requests of a socket at once; the rest wait unread, none is lost', async () => {
    const { s, gates, peak } = await gatedServer({ maxRequestsPerSocket: 4 });
    const ws = await connect(wsUrl(s));
    const box = inbox(ws);
    for (let i = 0; i < 40; i++) ws.send(JSON.stringify({ id: i, method: 'app.info', params: {} }));
    await until(() => gates.length === 4);
    await new Promise((r) => setTimeout(r, 200));
    expect(gates).toHaveLength(4); // the other 36 wait
    // An invalid message behind them waits its turn too (the socket is not read meanwhile).
    ws.send('not json');
    for (let released = 0; released < 40; released++) {
      await until(() => gates.length > released);
      gates[released].release();
    }
    await until(() => box.messages.length === 41);
    expect(peak()).toBe(4);
    expect(box.messages.filter((m) => m.ok).map((m) => m.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(box.messages.at(-1)).toMatchObject({ id: -1, ok: false });
    ws.close();
    await s.close();
  });

  it('holds at most maxInFlightBytes of requests in progress over all sockets', async () => {
    const { s, gates, peak } = await gatedServer({ maxInFlightBytes: 300_000 });
    const sockets = await Promise.all([connect(wsUrl(s)), connect(wsUrl(s)), connect(wsUrl(s))]);
    const boxes = sockets.map(inbox);
    const big = (id: number) => JSON.stringify({ id, method: 'app.info', params: { pad: 'x'.repeat(100_000) } });
    sockets.forEach((ws, k) => {
      for (let i = 0; i < 5; i++) ws.send(big(k * 10 + i));
    });
    await until(() => gates.length === 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(gates).toHaveLength(2); // 2 × 100 KB in progress; a third would pass 300 KB
    for (let released = 0; released < 15; released++) {
      await until(() => gates.length > released);
      gates[released].release();
    }
    await until(() => boxes.every((b) => b.messages.length === 5));
    expect(peak()).toBe(2);
    for (const ws of sockets) ws.close();
    await s.close();
  });

  it('stops reading a socket whose client does not read its replies', async () => {
    const fake = { call: async () => ({ blob: 'y'.repeat(512 * 1024) }), on: () => () => {} } as unknown as ServerOptions['service'];
    let calls = 0;
    const counting = { ...fake, call: async (m: any, p: any) => (calls++, (fake as any).call(m, p)) } as ServerOptions['service'];
    const s = await startServer({ staticDir, service: counting });
    const ws = await connect(wsUrl(s));
    let got = 0;
    ws.on('message', () => got++);
    (ws as unknown as { _socket: net.Socket })._socket.pause(); // the client stops reading
    for (let i = 0; i < 150; i++) ws.send(JSON.stringify({ id: i, method: 'app.info', params: {} }));
    await new Promise((r) => setTimeout(r, 1500));
    const whilePaused = calls;
    expect(whilePaused).toBeLessThan(150); // ~8 MB of unread replies plus the kernel's buffers, then the server waits
    (ws as unknown as { _socket: net.Socket })._socket.resume();
    await until(() => got === 150, 30_000);
    console.log(`slow reader: ${whilePaused} of 150 requests (512 KB replies) run while the client read nothing`);
    ws.close();
    await s.close();
  });

  it('takes a message as large as the contract allows (one 20 MB upload) and closes the socket above it with 1009', async () => {
    const s = await startServer({ staticDir, service });
    const ws = await connect(wsUrl(s));
    const box = inbox(ws);
    const data = 'A'.repeat(28_000_000); // classify.upload's limit for one image's base64
    ws.send(JSON.stringify({ id: 1, method: 'classify.upload', params: { images: [{ name: 'big.png', data }] } }));
    const answer = await box.next((m) => m.id === 1, 60_000);
    expect(answer.ok).toBe(false); // answered (no project is open), not cut off
    expect(answer.error.message).not.toMatch(/AAAA/);
    const over = JSON.stringify({ id: 2, method: 'classify.upload', params: { images: [{ name: 'big.png', data: 'A'.repeat(DEFAULT_MAX_MESSAGE_BYTES) }] } });
    const code = closed(ws);
    ws.send(over);
    expect(await code).toBe(1009);
    await s.close();
  });

  it('applies a smaller maxMessageBytes', async () => {
    const s = await startServer({ staticDir, service, maxMessageBytes: 1024 * 1024 });
    const ws = await connect(wsUrl(s));
    const code = closed(ws);
    ws.send(JSON.stringify({ id: 1, method: 'classify.upload', params: { images: [{ name: 'big.png', data: 'A'.repeat(2 * 1024 * 1024) }] } }));
    expect(await code).toBe(1009);
    await s.close();
  });

  it('stops accepting connections once closed', async () => {
    const other = await startServer({ staticDir, service });
    expect(other.port).not.toBe(server.port);
    await other.close();
    await expect(
      new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port: other.port, path: '/' }, resolve).on('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
