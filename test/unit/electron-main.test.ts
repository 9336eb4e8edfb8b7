// main/app/main.ts end to end with the 'electron' module mocked (and nothing else): at start-up it
// hardens the session, registers the one IPC handler in front of a real engine service, creates the
// secure window and the menu; the menu opens projects through the service and tells the renderer.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const fake = await vi.hoisted(async () => {
  const { EventEmitter } = await import('node:events');
  const { mkdtempSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const userData = mkdtempSync(path.join(os.tmpdir(), 'refit-electron-main-'));

  class FakeWebContents extends EventEmitter {
    url = '';
    send = vi.fn();
    openHandler: unknown = null;
    closeDevTools = vi.fn();
    isDestroyed = () => false;
    getURL = () => this.url;
    setWindowOpenHandler(handler: unknown) {
      this.openHandler = handler;
    }
  }
  class FakeBrowserWindow extends EventEmitter {
    static all: FakeBrowserWindow[] = [];
    static getAllWindows = () => FakeBrowserWindow.all;
    static fromWebContents = (contents: unknown) => FakeBrowserWindow.all.find((w) => w.webContents === contents) ?? null;
    webContents = new FakeWebContents();
    loadURL = vi.fn(async (url: string) => void (this.webContents.url = url));
    loadFile = vi.fn(async (file: string) => void (this.webContents.url = `file://${file}`));
    show = vi.fn();
    focus = vi.fn();
    isMinimized = () => false;
    constructor(public options: Record<string, unknown>) {
      super();
      FakeBrowserWindow.all.push(this);
    }
  }
  const app = Object.assign(new EventEmitter(), {
    isPackaged: false,
    enableSandbox: vi.fn(),
    requestSingleInstanceLock: vi.fn(() => true),
    whenReady: vi.fn(() => Promise.resolve()),
    getPath: vi.fn(() => userData),
    getVersion: () => '0.1.0',
    quit: vi.fn(),
  });
  const session = Object.assign(new EventEmitter(), {
    webRequest: { onBeforeRequest: vi.fn(), onHeadersReceived: vi.fn() },
    setPermissionRequestHandler: vi.fn(),
    setPermissionCheckHandler: vi.fn(),
    setDevicePermissionHandler: vi.fn(),
  });
  const handlers = new Map<string, (event: unknown, request: unknown) => Promise<{ ok: boolean; result?: unknown; error?: { message: string } }>>();
  return {
    userData,
    FakeBrowserWindow,
    FakeWebContents,
    app,
    session,
    handlers,
    ipcMain: { handle: vi.fn((channel: string, h: never) => void handlers.set(channel, h)), removeHandler: vi.fn() },
    dialog: { showOpenDialog: vi.fn(), showMessageBox: vi.fn(async () => ({ response: 0 })), showErrorBox: vi.fn() },
    Menu: { buildFromTemplate: vi.fn((template: unknown) => ({ template })), setApplicationMenu: vi.fn() },
    utilityProcess: { fork: vi.fn() },
    shell: { openExternal: vi.fn(async () => {}) },
  };
});

vi.mock('electron', () => ({
  app: fake.app,
  BrowserWindow: fake.FakeBrowserWindow,
  dialog: fake.dialog,
  ipcMain: fake.ipcMain,
  Menu: fake.Menu,
  session: { defaultSession: fake.session },
  shell: fake.shell,
  utilityProcess: fake.utilityProcess,
}));

type Item = { label?: string; role?: string; submenu?: Item[]; click?: () => void };
const lastMenu = () => (fake.Menu.setApplicationMenu.mock.lastCall![0] as { template: Item[] }).template;
const fileMenu = () => lastMenu().find((m) => m.label === 'File')!.submenu!;
const item = (items: Item[], label: string) => items.find((i) => i.label === label)!;
const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(check(), what).toBe(true);
};

let window: InstanceType<typeof fake.FakeBrowserWindow>;
let projectsDir: string;
const appDir = path.resolve('main/app');
const indexHtml = path.join(appDir, '..', 'renderer', 'main_window', 'index.html');

beforeAll(async () => {
  projectsDir = await mkdtemp(path.join(os.tmpdir(), 'refit-electron-projects-'));
  await import('../../main/app/main');
  await until(() => fake.FakeBrowserWindow.all.length === 1, 'the window is created once the app is ready');
  window = fake.FakeBrowserWindow.all[0];
  await until(() => fake.Menu.setApplicationMenu.mock.calls.length > 0, 'the menu is set');
});

afterAll(async () => {
  await rm(fake.userData, { recursive: true, force: true });
  if (projectsDir) await rm(projectsDir, { recursive: true, force: true });
});

describe('the main process', () => {
  it('sandboxes every renderer, keeps one instance, and hardens every web contents Electron creates', () => {
    expect(fake.app.enableSandbox).toHaveBeenCalled();
    expect(fake.app.requestSingleInstanceLock).toHaveBeenCalled();
    const other = new fake.FakeWebContents();
    fake.app.emit('web-contents-created', {}, other);
    const attach = { preventDefault: vi.fn() };
    other.emit('will-attach-webview', attach);
    expect(attach.preventDefault).toHaveBeenCalled();
    expect(other.openHandler).toBeTypeOf('function');
  });

  it('installs the session rules (CSP header, request filter, permissions) on the default session', () => {
    expect(fake.session.webRequest.onBeforeRequest).toHaveBeenCalledOnce();
    expect(fake.session.webRequest.onHeadersReceived).toHaveBeenCalledOnce();
    expect(fake.session.setPermissionRequestHandler).toHaveBeenCalledOnce();
    const [filter] = fake.session.webRequest.onBeforeRequest.mock.calls[0] as [(d: { url: string }, cb: (r: unknown) => void) => void];
    const cb = vi.fn();
    filter({ url: 'https://example.com/x.js' }, cb);
    expect(cb).toHaveBeenCalledWith({ cancel: true });
  });

  it('creates the secure window with the bundled preload and loads the built renderer (production build)', () => {
    const prefs = window.options.webPreferences as Record<string, unknown>;
    expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, devTools: false });
    expect(prefs.preload).toBe(path.join(appDir, 'preload.cjs'));
    expect(window.loadFile).toHaveBeenCalledWith(indexHtml);
    expect(lastMenu().find((m) => m.label === 'View')!.submenu!.map((i) => i.role)).not.toContain('toggleDevTools');
  });

  it('answers the renderer through the one IPC handler, backed by the real engine service', async () => {
    expect([...fake.handlers.keys()]).toEqual(['refit:call']);
    const handler = fake.handlers.get('refit:call')!;
    const sender = { senderFrame: { url: `file://${indexHtml}` }, sender: window.webContents };
    expect(await handler(sender, { method: 'project.recent', params: {} })).toEqual({ ok: true, result: [] });
    const refused = await handler({ senderFrame: { url: 'https://example.com/' }, sender: window.webContents }, { method: 'project.recent', params: {} });
    expect(refused.ok).toBe(false);

    fake.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: ['/data/birds', '/data/fruit'] });
    expect(await handler(sender, { method: 'dialog.chooseFolder', params: { multiple: true, title: 'Add class folders' } })).toEqual({
      ok: true,
      result: { paths: ['/data/birds', '/data/fruit'] },
    });
    const [parent, options] = fake.dialog.showOpenDialog.mock.lastCall as [unknown, { title: string; properties: string[] }];
    expect(parent).toBe(window);
    expect(options).toEqual({ title: 'Add class folders', properties: ['openDirectory', 'multiSelections'] });
    fake.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: true, filePaths: [] });
    expect(await handler(sender, { method: 'dialog.chooseFolder', params: {} })).toEqual({ ok: true, result: { paths: [] } });
  });

  it('File → Open Project… opens (or creates) the chosen folder through the service, tells the renderer, and lists it under Recent Projects', async () => {
    const dir = path.join(projectsDir, 'my project');
    fake.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: [dir] });
    window.webContents.send.mockClear();
    const menusBefore = fake.Menu.setApplicationMenu.mock.calls.length;
    item(fileMenu(), 'Open Project…').click!();
    await until(() => window.webContents.send.mock.calls.some(([, m]) => (m as { event: string }).event === 'project.opened'), 'project.opened is sent');
    const opened = window.webContents.send.mock.calls.find(([, m]) => (m as { event: string }).event === 'project.opened')!;
    expect(opened[0]).toBe('refit:event');
    expect((opened[1] as { payload: { project: { dir: string; name: string } } }).payload.project).toMatchObject({ dir, name: 'my project' });
    await until(() => fake.Menu.setApplicationMenu.mock.calls.length > menusBefore, 'the menu is rebuilt');
    const recent = item(fileMenu(), 'Recent Projects').submenu!;
    expect(recent.map((i) => i.label)).toEqual([`my project — ${dir}`]);
  });

  it('reports a failure from the menu to the renderer as app.error; Export Model… asks the renderer to show Export', async () => {
    window.webContents.send.mockClear();
    const file = path.join(projectsDir, 'a-file');
    await writeFile(file, 'not a folder');
    fake.dialog.showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: [path.join(file, 'project')] });
    item(fileMenu(), 'Open Project…').click!();
    await until(() => window.webContents.send.mock.calls.some(([, m]) => (m as { event: string }).event === 'app.error'), 'app.error is sent');
    const [, error] = window.webContents.send.mock.calls.find(([, m]) => (m as { event: string }).event === 'app.error')!;
    expect((error as { payload: { message: string } }).payload.message.length).toBeGreaterThan(0);

    item(fileMenu(), 'Export Model…').click!();
    expect(window.webContents.send).toHaveBeenLastCalledWith('refit:event', { event: 'menu.command', payload: { command: 'export-model' } });
  });

  it('Help → About shows a native message box with the version and the compute backend', async () => {
    lastMenu().find((m) => m.label === 'Help')!.submenu![0].click!();
    await until(() => fake.dialog.showMessageBox.mock.calls.length > 0, 'the about box is shown');
    const [, options] = fake.dialog.showMessageBox.mock.lastCall as unknown as [unknown, { message: string; detail: string }];
    expect(options.message).toBe('Refit 0.1.0');
    expect(options.detail).toMatch(/Compute backend: (wasm|cpu|node|node-gpu) \((CPU|GPU)\)/);
  });

  it('on quit, shuts the engine down first, then quits', async () => {
    const event = { preventDefault: vi.fn() };
    fake.app.emit('before-quit', event);
    expect(event.preventDefault).toHaveBeenCalled();
    await until(() => fake.app.quit.mock.calls.length > 0, 'app.quit is called after dispose');
    const again = { preventDefault: vi.fn() };
    fake.app.emit('before-quit', again);
    expect(again.preventDefault).not.toHaveBeenCalled();
  });
});
