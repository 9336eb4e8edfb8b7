// The IPC handler (main/app/ipc.ts) is total: hostile requests of any depth, size and type, and a service
// or window that misbehaves, each get one short {ok:false} reply; the handler keeps serving.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_ERROR_MESSAGE_CHARS } from '../../main/api/excerpt';
import { hostileMessages } from '../fixtures/hostile-messages';

vi.mock('electron', () => ({}));

const { registerIpc, broadcast } = await import('../../main/app/ipc');
const { CALL_CHANNEL } = await import('../../main/app/channels');
const { createEngineService } = await import('../../main/engine/service');

type Reply = { ok: boolean; result?: unknown; error?: { message: string } };
type Handler = (event: unknown, request: unknown) => Promise<Reply>;

function fakeIpcMain() {
  const handlers = new Map<string, Handler>();
  const ipcMain = { handle: (c: string, h: Handler) => void handlers.set(c, h), removeHandler: (c: string) => void handlers.delete(c) };
  return { handlers, ipcMain: ipcMain as unknown as Parameters<typeof registerIpc>[0] };
}

const fromApp = { senderFrame: { url: 'file:///app/index.html' }, sender: {} };
const short = (r: Reply) => r.ok === false && typeof r.error?.message === 'string' && r.error.message.length <= MAX_ERROR_MESSAGE_CHARS + 80;

let tmp: string;
let service: ReturnType<typeof createEngineService>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-ipc-hostile-'));
  service = createEngineService({ host: 'electron', recentFile: path.join(tmp, 'recent.json') });
});

afterAll(async () => {
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** `{a: {a: … }}` built in JS, far deeper than JSON.stringify can go. */
function deepJs(depth: number, asArray: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { a: v };
  return v;
}

describe('the IPC handler is total', () => {
  it('answers every hostile request with one short error, then still serves', async () => {
    const ipcMain = fakeIpcMain();
    const off = registerIpc(ipcMain.ipcMain, service, { isTrustedSender: (url) => url === fromApp.senderFrame.url, targets: () => [] });
    const call = ipcMain.handlers.get(CALL_CHANNEL)!;
    const requests: [string, unknown][] = [];
    for (const h of hostileMessages(1, 5 * 1024 * 1024)) {
      // IPC has no id: the messages whose only fault is their id would be valid calls here.
      if (typeof h.data !== 'string' || /^(id:|no id$)/.test(h.name)) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(h.data);
      } catch {
        continue; // IPC carries values, not text
      }
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) delete (parsed as Record<string, unknown>).id;
      requests.push([h.name, parsed]);
    }
    for (const asArray of [true, false]) {
      const deep = deepJs(200_000, asArray);
      requests.push([`method: 200,000 deep (${asArray ? 'array' : 'object'})`, { method: deep, params: {} }]);
      requests.push([`params: 200,000 deep`, { method: 'project.open', params: deep }]);
      requests.push([`dir: 200,000 deep`, { method: 'project.open', params: { dir: deep } }]);
      requests.push([`whole request: 200,000 deep`, deep]);
    }
    requests.push(['undefined', undefined], ['a function-free class instance', new Map([['method', 'app.info']])], ['a Date', new Date(0)]);
    expect(requests.length).toBeGreaterThan(150);
    for (const [name, request] of requests) {
      const reply = await call(fromApp, request);
      expect(short(reply), `${name}: ${JSON.stringify(reply).slice(0, 300)}`).toBe(true);
    }
    expect((await call(fromApp, { method: 'app.info', params: {} })).ok).toBe(true);
    // A hostile sender's address is quoted short too.
    const stranger = await call({ senderFrame: { url: `https://evil.example/${'x'.repeat(1_000_000)}` } }, { method: 'app.info', params: {} });
    expect(short(stranger)).toBe(true);
    expect(stranger.error!.message).toMatch(/^refused: .*"https:\/\/evil\.example\/x+…" \(1,000,021 characters\)\)$/);
    off();
  });

  it('a service or handler that throws anything — huge messages, odd values, hostile getters — gives one short error', async () => {
    const hostileError = Object.defineProperty(new Error('x'), 'message', {
      get() {
        throw new Error('a getter that throws');
      },
    });
    const thrown: unknown[] = [new Error('E'.repeat(5_000_000)), 'S'.repeat(5_000_000), deepJs(100_000, true), null, undefined, 42, Symbol('s'), hostileError];
    let next = 0;
    const fake = {
      call: vi.fn(async () => {
        throw thrown[next++];
      }),
      on: () => () => {},
    };
    const ipcMain = fakeIpcMain();
    registerIpc(ipcMain.ipcMain, fake, { isTrustedSender: () => true, targets: () => [], onResult: () => {
      throw new Error('onResult failed');
    } });
    const call = ipcMain.handlers.get(CALL_CHANNEL)!;
    for (let i = 0; i < thrown.length; i++) {
      const reply = await call(fromApp, { method: 'app.info', params: {} });
      expect(short(reply), String(i)).toBe(true);
    }
    // The senderFrame getter itself may throw (a frame gone): refused, not thrown.
    const gone = await call({ get senderFrame() { throw new Error('destroyed'); } }, { method: 'app.info', params: {} });
    expect(gone.ok).toBe(false);
  });

  it('an event a window cannot take does not stop the others', () => {
    const bad = { isDestroyed: () => false, send: () => { throw new Error('cannot clone'); } };
    const good = { isDestroyed: () => false, send: vi.fn() };
    expect(() => broadcast([bad, good], 'scan.progress', { done: 1, total: 2 })).not.toThrow();
    expect(good.send).toHaveBeenCalledTimes(1);
  });
});
