// The browser host's server with the real engine service: 127.0.0.1 only, token on every request,
// security headers, no path traversal, WebSocket guarded by token and Origin, the wire format.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { Response } from '../../main/api/contract';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { startServer, type RunningServer } from '../../main/host/server';

let tmp: string;
let staticDir: string;
let service: EngineService;
let server: RunningServer;

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw GET (fetch would normalise `..` away and forbid setting Host). */
function get(pathAndQuery: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: pathAndQuery, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const origin = () => `http://127.0.0.1:${server.port}`;
const cookie = () => `refit_token=${server.token}`;

/** Opens a socket; resolves with it when open, rejects with the HTTP status when refused. */
function connect(url: string, headers: Record<string, string> = {}, originHeader: string | null = origin()): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(originHeader ? { origin: originHeader } : {}) });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
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
    next(match: (m: any) => boolean): Promise<any> {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-server-'));
  staticDir = path.join(tmp, 'renderer');
  await mkdir(path.join(staticDir, 'assets'), { recursive: true });
  await writeFile(path.join(staticDir, 'index.html'), '<!doctype html><title>Refit</title><script type="module" src="./assets/app.js"></script>');
  await writeFile(path.join(staticDir, 'assets', 'app.js'), 'console.log("refit");');
  await writeFile(path.join(tmp, 'secret.txt'), 'TOP SECRET');
  await symlink(path.join(tmp, 'secret.txt'), path.join(staticDir, 'link.txt'));
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'recent.json') });
  server = await startServer({ port: 0, staticDir, service, maxMessageBytes: 1024 * 1024 });
});

afterAll(async () => {
  await server?.close();
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('browser host server', () => {
  it('listens on a random port of 127.0.0.1 with a ≥128-bit token in its URL', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses requests without the token (401) or with a wrong one (403), with security headers', async () => {
    const none = await get('/');
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/access token/);
    expect(none.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await get('/assets/app.js')).status).toBe(401);
    expect((await get('/?token=wrong')).status).toBe(403);
    expect((await get('/', { cookie: 'refit_token=wrong' })).status).toBe(403);
  });

  it('serves the page with the token: CSP, nosniff, no-referrer and an HttpOnly SameSite=Strict cookie', async () => {
    const page = await get(`/?token=${server.token}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>Refit</title>');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
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
    const setCookie = page.headers['set-cookie']![0];
    expect(setCookie).toContain(`refit_token=${server.token}`);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');

    // The page's assets load with the cookie alone.
    const asset = await get('/assets/app.js', { cookie: cookie() });
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.body).toBe('console.log("refit");');
    expect((await get('/assets/missing.js', { cookie: cookie() })).status).toBe(404);
  });

  it('never serves files outside its folder', async () => {
    for (const attempt of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/link.txt', `/${encodeURIComponent(path.join(tmp, 'secret.txt'))}`]) {
      const res = await get(attempt, { cookie: cookie() });
      expect([403, 404], attempt).toContain(res.status);
      expect(res.body).not.toContain('TOP SECRET');
    }
  });

  it('refuses a foreign Host header and redirects localhost to 127.0.0.1', async () => {
    expect((await get(`/?token=${server.token}`, { host: `evil.example:${server.port}` })).status).toBe(403);
    const redirect = await get(`/?token=${server.token}`, { host: `localhost:${server.port}` });
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe(`${origin()}/?token=${server.token}`);
  });

  it('refuses WebSockets without the token, with a wrong one, or from a foreign origin', async () => {
    const ws = `ws://127.0.0.1:${server.port}/ws`;
    await expect(connect(ws)).rejects.toThrow(/401/);
    await expect(connect(`${ws}?token=wrong`)).rejects.toThrow(/403/);
    await expect(connect(`${ws}?token=${server.token}`, {}, 'http://evil.example')).rejects.toThrow(/403/);
    await expect(connect(`${ws}?token=${server.token}`, {}, `http://localhost:${server.port}`)).rejects.toThrow(/403/);
    await expect(connect(`${ws}?token=${server.token}`, {}, null)).rejects.toThrow(/403/); // no Origin at all
  });

  it('speaks the contract over the WebSocket: results, errors and broadcast events', async () => {
    const a = await connect(`ws://127.0.0.1:${server.port}/ws`, { cookie: cookie() }); // the page's way: the cookie
    const b = await connect(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
    const inA = inbox(a);
    const inB = inbox(b);

    a.send(JSON.stringify({ id: 1, method: 'app.info', params: {} }));
    const info = (await inA.next((m) => m.id === 1)) as Extract<Response, { ok: true }>;
    expect(info.ok).toBe(true);
    expect(info.result).toMatchObject({ host: 'browser', project: null });

    a.send(JSON.stringify({ id: 2, method: 'no.such.method', params: {} }));
    expect(await inA.next((m) => m.id === 2)).toEqual({ id: 2, ok: false, error: { message: expect.stringMatching(/unknown method "no\.such\.method"/) } });
    a.send(JSON.stringify({ id: 3, method: 'dataset.images', params: { className: 'x' } }));
    expect((await inA.next((m) => m.id === 3)).error.message).toMatch(/dataset\.images: invalid request — offset/);
    a.send('this is not json');
    expect(await inA.next((m) => m.id === -1)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/JSON/) } });
    a.send(JSON.stringify({ id: 4, method: 'runs.list', params: {} }));
    expect((await inA.next((m) => m.id === 4)).error.message).toMatch(/No project is open/);

    // Opening a project scans it: the scan.progress event reaches every socket; the response only the caller.
    a.send(JSON.stringify({ id: 5, method: 'project.open', params: { dir: path.join(tmp, 'project'), create: true } }));
    expect((await inA.next((m) => m.id === 5)).ok).toBe(true);
    expect(await inA.next((m) => m.event === 'scan.progress')).toEqual({ event: 'scan.progress', payload: { done: 0, total: 0 } });
    expect(await inB.next((m) => m.event === 'scan.progress')).toEqual({ event: 'scan.progress', payload: { done: 0, total: 0 } });
    expect(inB.messages.some((m) => m.id === 5)).toBe(false);
    a.close();
    b.close();
  });

  it('closes a socket that sends a message above the size limit', async () => {
    const ws = await connect(`ws://127.0.0.1:${server.port}/ws`, { cookie: cookie() });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(JSON.stringify({ id: 1, method: 'classify.upload', params: { images: [{ name: 'big.png', data: 'A'.repeat(2 * 1024 * 1024) }] } }));
    expect(await closed).toBe(1009);
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
