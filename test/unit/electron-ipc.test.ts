// The IPC table (main/app/ipc.ts) in front of a real engine service: sender check, contract
// validation, real results, errors as {ok:false} replies, events forwarded. Only 'electron' is mocked.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppInfo, DatasetView } from '../../main/api/contract';

vi.mock('electron', () => ({}));

const { registerIpc } = await import('../../main/app/ipc');
const { CALL_CHANNEL, EVENT_CHANNEL } = await import('../../main/app/channels');
const { appUrls } = await import('../../main/app/window');
const { createEngineService } = await import('../../main/engine/service');

const photos = path.resolve('../shared/datasets/photos5');
const indexHtml = path.resolve('/opt/Refit/.vite/renderer/main_window/index.html');
const appPage = `file://${indexHtml}`;

type Handler = (event: unknown, request: unknown) => Promise<{ ok: boolean; result?: unknown; error?: { message: string } }>;

function fakeIpcMain() {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    handle: vi.fn((channel: string, handler: Handler) => void handlers.set(channel, handler)),
    removeHandler: vi.fn((channel: string) => void handlers.delete(channel)),
  };
}

function fakeTarget(destroyed = false) {
  return { isDestroyed: () => destroyed, send: vi.fn() };
}

const fromApp = { senderFrame: { url: appPage }, sender: {} };

let tmp: string;
let service: ReturnType<typeof createEngineService>;
let ipcMain: ReturnType<typeof fakeIpcMain>;
let target: ReturnType<typeof fakeTarget>;
let gone: ReturnType<typeof fakeTarget>;
let unregister: () => void;
const results: string[] = [];
const chooseFolder = vi.fn(async (params: { multiple?: boolean }, _event?: unknown) => ({ paths: params.multiple ? ['/a', '/b'] : ['/a'] }));

function call(request: unknown, event: unknown = fromApp) {
  return ipcMain.handlers.get(CALL_CHANNEL)!(event, request);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-electron-ipc-'));
  service = createEngineService({ host: 'electron', recentFile: path.join(tmp, 'recent.json') });
  ipcMain = fakeIpcMain();
  target = fakeTarget();
  gone = fakeTarget(true);
  unregister = registerIpc(ipcMain, service, {
    isTrustedSender: appUrls({ indexHtml }).isAppPage,
    targets: () => [target, gone],
    extras: { 'dialog.chooseFolder': chooseFolder },
    onResult: (method) => void results.push(method),
  });
});

afterAll(async () => {
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the refit:call handler', () => {
  it('is the only handler registered', () => {
    expect(ipcMain.handle).toHaveBeenCalledTimes(1);
    expect([...ipcMain.handlers.keys()]).toEqual(['refit:call']);
  });

  it('refuses senders that are not the app’s own page', async () => {
    for (const event of [
      { senderFrame: { url: 'https://example.com/' }, sender: {} },
      { senderFrame: { url: 'file:///tmp/evil.html' }, sender: {} },
      { senderFrame: { url: `file://${path.dirname(indexHtml)}/assets/x.js` }, sender: {} },
      { senderFrame: null, sender: {} },
      {
        get senderFrame() {
          throw new Error('Render frame was disposed');
        },
        sender: {},
      },
    ]) {
      const reply = await call({ method: 'app.info', params: {} }, event);
      expect(reply.ok).toBe(false);
      expect(reply.error!.message).toMatch(/^refused: the request did not come from Refit's own window/);
    }
  });

  it('rejects malformed requests and unknown methods without calling the engine', async () => {
    expect((await call(null)).error!.message).toMatch(/^invalid request/);
    expect((await call('app.info')).error!.message).toMatch(/^invalid request/);
    expect((await call({ params: {} })).error!.message).toMatch(/^invalid request: method:/);
    expect((await call({ method: 'app.info', params: {}, id: 3, extra: 1 })).error!.message).toMatch(/^invalid request: .*(id|extra)/);
    const unknown = await call({ method: 'fs.deleteEverything', params: {} });
    expect(unknown).toEqual({ ok: false, error: { message: 'unknown method "fs.deleteEverything"' } });
    const proto = await call({ method: '__proto__', params: {} });
    expect(proto.error!.message).toBe('unknown method "__proto__"');
    expect(results).toEqual([]);
  });

  it('rejects invalid params with a message naming the method and the field', async () => {
    const missing = await call({ method: 'dataset.renameClass', params: { from: 'cats' } });
    expect(missing.ok).toBe(false);
    expect(missing.error!.message).toMatch(/^dataset\.renameClass: invalid request — to: /);
    const wrongType = await call({ method: 'dataset.images', params: { className: 'birds', offset: -1, limit: 10 } });
    expect(wrongType.error!.message).toMatch(/^dataset\.images: invalid request — offset: /);
    const extra = await call({ method: 'app.info', params: { sneaky: true } });
    expect(extra.error!.message).toMatch(/^app\.info: invalid request — params: .*sneaky/);
    const nested = await call({ method: 'training.start', params: { config: { backbone: 'resnet18' } } });
    expect(nested.error!.message).toMatch(/^training\.start: invalid request — config\.weights: /);
  });

  it('returns a real result from the engine for a valid call', async () => {
    const reply = await call({ method: 'app.info', params: {} });
    expect(reply.ok).toBe(true);
    const info = reply.result as AppInfo;
    expect(info.host).toBe('electron');
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(['node-gpu', 'node', 'wasm', 'cpu']).toContain(info.backend.name);
    expect(info.project).toBeNull();
    expect(await call({ method: 'project.recent', params: {} })).toEqual({ ok: true, result: [] });
    // The wire format always carries params (the preload sends {} when the caller gave none).
    expect((await call({ method: 'project.recent' })).error!.message).toMatch(/^invalid request: params: /);
  });

  it('turns engine errors into {ok:false} replies (never throws across IPC)', async () => {
    const reply = await call({ method: 'dataset.scan', params: {} });
    expect(reply.ok).toBe(false);
    expect(typeof reply.error!.message).toBe('string');
    expect(reply.error!.message.length).toBeGreaterThan(0);
    const missing = await call({ method: 'project.open', params: { dir: path.join(tmp, 'nothing-here') } });
    expect(missing.ok).toBe(false);
    expect(missing.error).toMatchObject({ kind: 'not-found', message: expect.stringMatching(/^There is no folder .*nothing-here/) });
    const notProject = await call({ method: 'project.open', params: { dir: tmp } });
    expect(notProject.error).toMatchObject({ kind: 'not-a-project', message: expect.stringMatching(/is not a Refit project folder/) });
  });

  it('opens a real project and forwards the engine’s events to the window (skipping destroyed ones)', async () => {
    const dir = path.join(tmp, 'project');
    const opened = await call({ method: 'project.open', params: { dir, create: true } });
    expect(opened.ok).toBe(true);
    expect((opened.result as DatasetView).project.dir).toBe(dir);
    expect(results).toContain('project.open');

    target.send.mockClear();
    const added = await call({ method: 'dataset.addFolders', params: { folders: [path.join(photos, 'birds'), path.join(photos, 'fruit')] } });
    expect(added.ok, added.error?.message).toBe(true);
    const view = added.result as DatasetView;
    expect(view.classes.map((c) => c.name).sort()).toEqual(['birds', 'fruit']);
    expect(view.totalImages).toBeGreaterThan(40);

    const events = target.send.mock.calls.filter(([channel]) => channel === EVENT_CHANNEL).map(([, message]) => message);
    expect(events.length).toBeGreaterThan(0);
    const last = events.at(-1) as { event: string; payload: { done: number; total: number } };
    expect(last.event).toBe('scan.progress');
    expect(last.payload.done).toBe(last.payload.total);
    expect(last.payload.total).toBeGreaterThanOrEqual(view.totalImages);
    expect(target.send.mock.calls.every(([channel]) => channel === 'refit:event')).toBe(true);
    expect(gone.send).not.toHaveBeenCalled();

    expect((await call({ method: 'project.recent', params: {} })).result).toEqual([dir]);
  });

  it('runs the Electron-only dialog.chooseFolder method with validated params', async () => {
    expect(await call({ method: 'dialog.chooseFolder', params: { multiple: true } })).toEqual({ ok: true, result: { paths: ['/a', '/b'] } });
    expect(chooseFolder.mock.calls[0][0]).toEqual({ multiple: true });
    expect(chooseFolder.mock.calls[0][1]).toBe(fromApp);
    const bad = await call({ method: 'dialog.chooseFolder', params: { multiple: 'yes' } });
    expect(bad.error!.message).toMatch(/^dialog\.chooseFolder: invalid request — multiple: /);
    const refused = await call({ method: 'dialog.chooseFolder', params: {} }, { senderFrame: { url: 'https://example.com/' } });
    expect(refused.ok).toBe(false);
    expect(chooseFolder).toHaveBeenCalledTimes(1);
  });

  it('treats dialog.chooseFolder as unknown when no handler is given (e.g. in another host)', async () => {
    const other = fakeIpcMain();
    const off = registerIpc(other, service, { isTrustedSender: () => true, targets: () => [] });
    const reply = await other.handlers.get(CALL_CHANNEL)!(fromApp, { method: 'dialog.chooseFolder', params: {} });
    expect(reply).toEqual({ ok: false, error: { message: 'unknown method "dialog.chooseFolder"' } });
    off();
    expect(other.removeHandler).toHaveBeenCalledWith(CALL_CHANNEL);
  });

  it('unregisters the handler and stops forwarding events', async () => {
    unregister();
    expect(ipcMain.handlers.size).toBe(0);
    target.send.mockClear();
    // A rescan through the service itself: no IPC handler and no listener left.
    await service.call('dataset.scan', {});
    expect(target.send).not.toHaveBeenCalled();
  });
});
