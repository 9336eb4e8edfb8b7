// The WebSocket transport against a real (tiny, in-test) `ws` server, and the transport choice.
import { afterEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { ConnectionError, createApi, createSocketApi, socketUrl, type ApiClient, type SocketLike } from '../../renderer/src/api';
import type { RefitApi } from '../../renderer/src/types';

// Node's own resolution (the renderer project resolves the 'browser' condition, where ws is a stub).
const { WebSocketServer, WebSocket } = createRequire(import.meta.url)('ws') as typeof import('ws');

interface Server {
  url: string;
  wss: import('ws').WebSocketServer;
  requests: { id: number; method: string; params: unknown }[];
  urls: string[];
  close(): Promise<void>;
}

/** Answers like the host: responses by id (slow ones later), events in between, errors as ok:false. */
async function startServer(): Promise<Server> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const requests: Server['requests'] = [];
  const urls: string[] = [];
  wss.on('connection', (socket, req) => {
    urls.push(req.url ?? '');
    socket.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      requests.push(msg);
      const reply = (body: object, delay = 0) => setTimeout(() => socket.send(JSON.stringify({ id: msg.id, ...body })), delay);
      switch (msg.method) {
        case 'app.info':
          // Slow: answered after the next request's response, and after an event.
          socket.send(JSON.stringify({ event: 'scan.progress', payload: { done: 1, total: 3 } }));
          reply({ ok: true, result: { version: '9.9.9' } }, 40);
          break;
        case 'project.recent':
          reply({ ok: true, result: ['/a', '/b'] });
          break;
        case 'dataset.scan':
          reply({ ok: false, error: { message: 'no project is open', kind: 'no-project' } });
          break;
        case 'training.status':
          // Never answered: the connection drops instead.
          setTimeout(() => socket.terminate(), 20);
          break;
      }
    });
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/ws?token=s3cret`,
    wss,
    requests,
    urls,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

let server: Server | null = null;
let client: ApiClient | null = null;
afterEach(async () => {
  client?.close();
  client = null;
  await server?.close();
  server = null;
});

const connect = (url: string) => createSocketApi(url, { createSocket: (u) => new WebSocket(u) as unknown as SocketLike, reconnectDelays: [20] });

describe('WebSocket client', () => {
  it('matches responses to requests by id, rejects errors, and dispatches events', async () => {
    server = await startServer();
    client = connect(server.url);
    const events: unknown[] = [];
    const off = client.on('scan.progress', (p) => events.push(p));

    // Sent before the socket is open: queued, then sent.
    const info = client.call('app.info', {});
    const recent = client.call('project.recent', {});
    const order: string[] = [];
    info.then(() => order.push('info'));
    recent.then(() => order.push('recent'));
    expect(await recent).toEqual(['/a', '/b']);
    expect(await info).toEqual({ version: '9.9.9' });
    expect(order).toEqual(['recent', 'info']);
    expect(server.requests.map((r) => [r.id, r.method])).toEqual([
      [1, 'app.info'],
      [2, 'project.recent'],
    ]);
    expect(server.requests[0].params).toEqual({});
    expect(server.urls[0]).toBe('/ws?token=s3cret');
    expect(events).toEqual([{ done: 1, total: 3 }]);

    await expect(client.call('dataset.scan', {})).rejects.toThrow('no project is open');
    // The engine's kind of failure reaches the screens (their advice depends on it).
    await expect(client.call('dataset.scan', {})).rejects.toMatchObject({ kind: 'no-project' });

    off();
    await client.call('app.info', {});
    expect(events).toHaveLength(1);
  });

  it('fails waiting calls when the connection drops, says so, and reconnects by itself', async () => {
    server = await startServer();
    client = connect(server.url);
    const states: string[] = [];
    client.onConnection((s) => states.push(s));
    await client.call('project.recent', {});
    const lost = client.call('training.status', {});
    await expect(lost).rejects.toBeInstanceOf(ConnectionError);
    await expect(lost).rejects.toThrow(/Lost the connection to the Refit server/);
    // Reconnects and works again.
    expect(await client.call('project.recent', {})).toEqual(['/a', '/b']);
    expect(states).toEqual(['open', 'closed', 'connecting', 'open']);
    expect(server.urls).toHaveLength(2);
  });

  it('ignores responses for unknown ids and non-JSON messages (stub socket)', async () => {
    let sock!: SocketLike & { sent: string[] };
    client = createSocketApi('ws://x/ws', {
      createSocket: () => {
        sock = { readyState: 0, sent: [], send: (d: string) => sock.sent.push(d), close: () => {}, onopen: null, onmessage: null, onclose: null, onerror: null } as SocketLike & { sent: string[] };
        return sock;
      },
    });
    const p = client.call('runs.list', {});
    expect(sock.sent).toEqual([]);
    (sock as { readyState: number }).readyState = 1;
    sock.onopen!({});
    expect(JSON.parse(sock.sent[0])).toEqual({ id: 1, method: 'runs.list', params: {} });
    sock.onmessage!({ data: 'not json' });
    sock.onmessage!({ data: JSON.stringify({ id: 99, ok: true, result: 'stray' }) });
    sock.onmessage!({ data: new TextEncoder().encode(JSON.stringify({ id: 1, ok: true, result: [] })) });
    expect(await p).toEqual([]);
  });
});

describe('transport choice', () => {
  it('builds the socket URL from the page, carrying its token', () => {
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:4173', search: '?token=a%2Bb' })).toBe('ws://127.0.0.1:4173/ws?token=a%2Bb');
    expect(socketUrl({ protocol: 'https:', host: 'gpu.example:8443', search: '' })).toBe('wss://gpu.example:8443/ws');
  });

  it('uses window.api when Electron’s preload provides it', async () => {
    const calls: string[] = [];
    const api: RefitApi = {
      call: (async (method: string) => {
        calls.push(method);
        return ['/p'];
      }) as RefitApi['call'],
      on: () => () => {},
    };
    const fakeWindow = { api, location: { protocol: 'file:', host: '', search: '' } } as unknown as Window;
    const chosen = createApi(fakeWindow);
    expect(chosen.transport).toBe('electron');
    expect(await chosen.call('project.recent', {})).toEqual(['/p']);
    expect(calls).toEqual(['project.recent']);
  });
});
