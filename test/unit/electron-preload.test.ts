// The preload surface: exactly window.api (call, on) and window.refitFiles (pathForFile), through
// contextBridge, over the two channels. Only 'electron' is mocked.
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const electron = vi.hoisted(() => ({
  exposed: new Map<string, unknown>(),
  contextBridge: { exposeInMainWorld: vi.fn() },
  ipcRenderer: { invoke: vi.fn(), on: vi.fn(), removeListener: vi.fn(), send: vi.fn(), sendSync: vi.fn() },
  webUtils: { getPathForFile: vi.fn(() => '/home/me/photos/birds') },
}));

vi.mock('electron', () => {
  electron.contextBridge.exposeInMainWorld.mockImplementation((key: string, value: unknown) => void electron.exposed.set(key, value));
  return { contextBridge: electron.contextBridge, ipcRenderer: electron.ipcRenderer, webUtils: electron.webUtils };
});

type Api = import('../../main/api/contract').RefitApi;
let api: Api;
let refitFiles: { pathForFile(file: unknown): string };

beforeAll(async () => {
  await import('../../main/app/preload');
  api = electron.exposed.get('api') as Api;
  refitFiles = electron.exposed.get('refitFiles') as typeof refitFiles;
});

beforeEach(() => {
  electron.ipcRenderer.invoke.mockReset();
  electron.ipcRenderer.on.mockClear();
  electron.ipcRenderer.removeListener.mockClear();
});

describe('the preload', () => {
  it('exposes exactly `api` and `refitFiles` through contextBridge, and nothing raw', () => {
    expect(electron.contextBridge.exposeInMainWorld.mock.calls.map(([key]) => key)).toEqual(['api', 'refitFiles']);
    expect(Object.keys(api).sort()).toEqual(['call', 'on']);
    expect(Object.keys(refitFiles)).toEqual(['pathForFile']);
    for (const value of electron.exposed.values()) {
      expect(Object.values(value as object).every((v) => typeof v === 'function')).toBe(true);
      expect(Object.values(value as object)).not.toContain(electron.ipcRenderer);
    }
    expect(electron.ipcRenderer.send).not.toHaveBeenCalled();
    expect(electron.ipcRenderer.sendSync).not.toHaveBeenCalled();
  });

  it('api.call goes through ipcRenderer.invoke("refit:call", {method, params}) and returns the result', async () => {
    electron.ipcRenderer.invoke.mockResolvedValueOnce({ ok: true, result: { version: '0.1.0' } });
    await expect(api.call('app.info', {})).resolves.toEqual({ version: '0.1.0' });
    expect(electron.ipcRenderer.invoke).toHaveBeenCalledWith('refit:call', { method: 'app.info', params: {} });
    electron.ipcRenderer.invoke.mockResolvedValueOnce({ ok: true, result: [] });
    await (api.call as (m: string, p?: unknown) => Promise<unknown>)('project.recent');
    expect(electron.ipcRenderer.invoke).toHaveBeenLastCalledWith('refit:call', { method: 'project.recent', params: {} });
  });

  it('api.call rejects with the engine’s message when the reply is {ok:false}', async () => {
    electron.ipcRenderer.invoke.mockResolvedValueOnce({ ok: false, error: { message: 'dataset.renameClass: invalid request — to: required' } });
    await expect(api.call('dataset.renameClass', { from: 'a' } as never)).rejects.toThrow('dataset.renameClass: invalid request — to: required');
    electron.ipcRenderer.invoke.mockResolvedValueOnce(undefined);
    await expect(api.call('app.info', {})).rejects.toThrow(/no reply/);
    await expect(api.call(42 as never, {} as never)).rejects.toThrow(/method must be a string/);
  });

  it('api.on listens on "refit:event" for one event name and returns an unsubscribe', () => {
    const listener = vi.fn();
    const off = api.on('training.event', listener);
    expect(electron.ipcRenderer.on).toHaveBeenCalledTimes(1);
    const [channel, forward] = electron.ipcRenderer.on.mock.calls[0] as [string, (e: unknown, m: unknown) => void];
    expect(channel).toBe('refit:event');
    forward({ sender: 'hidden' }, { event: 'training.event', payload: { runId: 'r1', event: { type: 'log', message: 'hi' } } });
    forward({}, { event: 'scan.progress', payload: { done: 1, total: 2 } });
    forward({}, null);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(listener).toHaveBeenCalledWith({ runId: 'r1', event: { type: 'log', message: 'hi' } }); // the IPC event object is never passed on
    off();
    expect(electron.ipcRenderer.removeListener).toHaveBeenCalledWith('refit:event', forward);
    expect(() => api.on('scan.progress', 'nope' as never)).toThrow(TypeError);
  });

  it('refitFiles.pathForFile uses webUtils.getPathForFile', () => {
    const file = { name: 'birds' };
    expect(refitFiles.pathForFile(file)).toBe('/home/me/photos/birds');
    expect(electron.webUtils.getPathForFile).toHaveBeenCalledWith(file);
  });
});
