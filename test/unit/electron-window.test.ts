// The window's security settings, its web contents rules, the session rules (CSP header, no remote
// content, no permissions) and the native menu — with the 'electron' module mocked (nothing else).
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const fake = await vi.hoisted(async () => {
  const { EventEmitter } = await import('node:events');
  class FakeWebContents extends EventEmitter {
    url = '';
    openHandler: ((details: { url: string }) => { action: string }) | null = null;
    closeDevTools = vi.fn();
    getURL() {
      return this.url;
    }
    setWindowOpenHandler(handler: (details: { url: string }) => { action: string }) {
      this.openHandler = handler;
    }
  }
  class FakeBrowserWindow extends EventEmitter {
    static created: FakeBrowserWindow[] = [];
    webContents = new FakeWebContents();
    loadURL = vi.fn(async (url: string) => void (this.webContents.url = url));
    loadFile = vi.fn(async (file: string) => void (this.webContents.url = `file://${file}`));
    show = vi.fn();
    constructor(public options: Record<string, unknown>) {
      super();
      FakeBrowserWindow.created.push(this);
    }
  }
  return { FakeBrowserWindow, FakeWebContents, openExternal: vi.fn(async () => {}) };
});

// shell is there only to prove that nothing is ever handed to the system browser.
vi.mock('electron', () => ({
  BrowserWindow: fake.FakeBrowserWindow,
  shell: { openExternal: fake.openExternal },
}));

const { SECURE_WEB_PREFERENCES, appUrls, createMainWindow, hardenWebContents } = await import('../../main/app/window');
const { CONTENT_SECURITY_POLICY, installSessionSecurity, withCsp } = await import('../../main/app/csp');
const { menuTemplate } = await import('../../main/app/menu');

const indexHtml = path.resolve('/opt/Refit/resources/app.asar/.vite/renderer/main_window/index.html');
const indexUrl = `file://${indexHtml}`;
const preload = path.resolve('/opt/Refit/resources/app.asar/.vite/build/preload.cjs');

/** A navigation event as Electron passes it: preventDefault and the target URL. */
function navigation(url: string, extra: Record<string, unknown> = {}) {
  return { url, preventDefault: vi.fn(), ...extra };
}

beforeEach(() => {
  fake.FakeBrowserWindow.created.length = 0;
  fake.openExternal.mockClear();
});

describe('the main window', () => {
  it('is created with exactly the required security options and the preload script', () => {
    const window = createMainWindow({ preload, location: { indexHtml }, isDev: false }) as unknown as InstanceType<typeof fake.FakeBrowserWindow>;
    expect(fake.FakeBrowserWindow.created).toHaveLength(1);
    expect(window.options.webPreferences).toStrictEqual({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: false,
      disableBlinkFeatures: 'Auxclick',
      devTools: false,
      preload,
    });
    expect(window.options.webPreferences).toStrictEqual({ ...SECURE_WEB_PREFERENCES, devTools: false, preload });
    expect(path.isAbsolute(preload)).toBe(true);
    expect(window.loadFile).toHaveBeenCalledWith(indexHtml);
    expect(window.loadURL).not.toHaveBeenCalled();
    // Shown only once it has painted.
    expect(window.options.show).toBe(false);
    window.emit('ready-to-show');
    expect(window.show).toHaveBeenCalledOnce();
  });

  it('allows devtools and loads the Vite dev server in development only, with the same security options', () => {
    const window = createMainWindow({ preload, location: { indexHtml, devServerUrl: 'http://localhost:5173' }, isDev: true }) as unknown as InstanceType<
      typeof fake.FakeBrowserWindow
    >;
    expect(window.options.webPreferences).toStrictEqual({ ...SECURE_WEB_PREFERENCES, devTools: true, preload });
    expect(window.loadURL).toHaveBeenCalledWith('http://localhost:5173');
  });

  it('prevents navigation to any other URL, but allows reloading its own page', async () => {
    const window = createMainWindow({ preload, location: { indexHtml }, isDev: false }) as unknown as InstanceType<typeof fake.FakeBrowserWindow>;
    const contents = window.webContents;
    expect(contents.getURL()).toBe(indexUrl);

    for (const url of ['https://example.com/phish', 'file:///etc/passwd', 'http://example.com/', 'javascript:alert(1)', `file://${path.dirname(indexHtml)}/other.html`]) {
      const event = navigation(url);
      contents.emit('will-navigate', event, url);
      expect(event.preventDefault, url).toHaveBeenCalled();
    }

    const redirect = navigation('https://example.com/');
    contents.emit('will-redirect', redirect, redirect.url);
    expect(redirect.preventDefault).toHaveBeenCalled();

    const reload = navigation(`${indexUrl}#results`);
    contents.emit('will-navigate', reload, reload.url);
    expect(reload.preventDefault).not.toHaveBeenCalled();

    const subframe = navigation('https://example.com/', { isMainFrame: false });
    contents.emit('will-frame-navigate', subframe);
    expect(subframe.preventDefault).toHaveBeenCalled();
    expect(fake.openExternal).not.toHaveBeenCalled();
  });

  it('denies every new window (window.open, target=_blank, middle-click) and opens nothing outside the app', () => {
    const window = createMainWindow({ preload, location: { indexHtml }, isDev: false }) as unknown as InstanceType<typeof fake.FakeBrowserWindow>;
    const open = window.webContents.openHandler!;
    for (const url of ['https://www.tensorflow.org/js', indexUrl, 'file:///etc/passwd', 'http://example.com/', 'smb://server/share', 'not a url']) {
      expect(open({ url })).toEqual({ action: 'deny' });
    }
    expect(fake.openExternal).not.toHaveBeenCalled();
  });

  it('refuses webviews, and closes devtools in production', () => {
    const window = createMainWindow({ preload, location: { indexHtml }, isDev: false }) as unknown as InstanceType<typeof fake.FakeBrowserWindow>;
    const attach = navigation('');
    window.webContents.emit('will-attach-webview', attach, {}, {});
    expect(attach.preventDefault).toHaveBeenCalled();
    window.webContents.emit('devtools-opened');
    expect(window.webContents.closeDevTools).toHaveBeenCalled();

    const dev = createMainWindow({ preload, location: { indexHtml, devServerUrl: 'http://localhost:5173' }, isDev: true }) as unknown as InstanceType<
      typeof fake.FakeBrowserWindow
    >;
    dev.webContents.emit('devtools-opened');
    expect(dev.webContents.closeDevTools).not.toHaveBeenCalled();
  });

  it('applies its rules once per web contents (any contents Electron creates gets them too)', () => {
    const contents = new fake.FakeWebContents();
    const urls = appUrls({ indexHtml });
    hardenWebContents(contents as never, { urls, isDev: false });
    hardenWebContents(contents as never, { urls, isDev: false });
    expect(contents.listenerCount('will-navigate')).toBe(1);
    expect(contents.listenerCount('will-attach-webview')).toBe(1);
    expect(contents.openHandler).not.toBeNull();
  });
});

describe("the app's own URLs", () => {
  it('in production: only index.html is a trusted page; only files of the built renderer (and inline data) load', () => {
    const urls = appUrls({ indexHtml });
    expect(urls.isAppPage(indexUrl)).toBe(true);
    expect(urls.isAppPage(`${indexUrl}#/train`)).toBe(true);
    expect(urls.isAppPage(`file://${path.dirname(indexHtml)}/assets/index.js`)).toBe(false);
    expect(urls.isAppPage('file:///tmp/evil/index.html')).toBe(false);
    expect(urls.isAppPage('https://example.com/')).toBe(false);
    expect(urls.isAppPage('about:blank')).toBe(false);
    expect(urls.isAppPage('')).toBe(false);

    expect(urls.isAllowedRequest(indexUrl)).toBe(true);
    expect(urls.isAllowedRequest(`file://${path.dirname(indexHtml)}/assets/index-abc123.js`)).toBe(true);
    expect(urls.isAllowedRequest('data:image/webp;base64,AAAA')).toBe(true);
    expect(urls.isAllowedRequest('blob:file:///0b9f')).toBe(true);
    expect(urls.isAllowedRequest(`file://${path.dirname(indexHtml)}/../../../../../../etc/passwd`)).toBe(false);
    expect(urls.isAllowedRequest(`file://${path.dirname(indexHtml)}/assets/../../../../../../../etc/passwd`)).toBe(false);
    expect(urls.isAllowedRequest(`file://${path.dirname(indexHtml)}/%2e%2e/%2E%2E/secret`)).toBe(false);
    expect(urls.isAllowedRequest(`file://${path.dirname(indexHtml)}-evil/x.js`)).toBe(false);
    expect(urls.isAllowedRequest('file:///home/user/photo.jpg')).toBe(false);
    expect(urls.isAllowedRequest('https://cdn.example.com/lib.js')).toBe(false);
    expect(urls.isAllowedRequest('http://localhost:5173/')).toBe(false);
    expect(urls.isAllowedRequest('ws://localhost:5173/')).toBe(false);
    expect(urls.isAllowedRequest('devtools://devtools/bundled/inspector.html')).toBe(false);
  });

  it('in development: the dev server (page, modules, hot-reload socket) and nothing else', () => {
    const urls = appUrls({ indexHtml, devServerUrl: 'http://localhost:5173' });
    expect(urls.isAppPage('http://localhost:5173/')).toBe(true);
    expect(urls.isAppPage('http://localhost:5174/')).toBe(false);
    expect(urls.isAppPage(indexUrl)).toBe(false);
    expect(urls.isAllowedRequest('http://localhost:5173/src/main.ts')).toBe(true);
    expect(urls.isAllowedRequest('ws://localhost:5173/?token=x')).toBe(true);
    expect(urls.isAllowedRequest('http://localhost:8080/')).toBe(false);
    expect(urls.isAllowedRequest('https://example.com/')).toBe(false);
    expect(urls.isAllowedRequest('file:///etc/passwd')).toBe(false);
  });
});

describe('session security', () => {
  function fakeSession() {
    const session = Object.assign(new EventEmitter(), {
      webRequest: {
        onBeforeRequest: vi.fn(),
        onHeadersReceived: vi.fn(),
      },
      setPermissionRequestHandler: vi.fn(),
      setPermissionCheckHandler: vi.fn(),
      setDevicePermissionHandler: vi.fn(),
    });
    installSessionSecurity(session as never, appUrls({ indexHtml }));
    return session;
  }

  it('cancels every request that is not for the app itself', () => {
    const session = fakeSession();
    const [onBeforeRequest] = session.webRequest.onBeforeRequest.mock.calls[0] as [(d: { url: string }, cb: (r: unknown) => void) => void];
    const decide = (url: string) => {
      const callback = vi.fn();
      onBeforeRequest({ url }, callback);
      return callback.mock.calls[0][0];
    };
    expect(decide('https://example.com/tracker.js')).toEqual({ cancel: true });
    expect(decide('http://169.254.169.254/latest/meta-data')).toEqual({ cancel: true });
    expect(decide('file:///etc/passwd')).toEqual({ cancel: true });
    expect(decide(`file://${path.dirname(indexHtml)}/assets/app.js`)).toEqual({ cancel: false });
  });

  it('adds the Content-Security-Policy header to every response, replacing any other', () => {
    const session = fakeSession();
    const [onHeadersReceived] = session.webRequest.onHeadersReceived.mock.calls[0] as [
      (d: { responseHeaders?: Record<string, string[]> }, cb: (r: { responseHeaders: Record<string, string[]> }) => void) => void,
    ];
    const callback = vi.fn();
    onHeadersReceived({ responseHeaders: { 'content-security-policy': ["default-src *; script-src 'unsafe-eval'"], 'Content-Type': ['text/html'] } }, callback);
    const { responseHeaders } = callback.mock.calls[0][0];
    expect(responseHeaders['Content-Security-Policy']).toEqual([CONTENT_SECURITY_POLICY]);
    expect(responseHeaders['content-security-policy']).toBeUndefined();
    expect(responseHeaders['Content-Type']).toEqual(['text/html']);
    expect(withCsp(undefined)['Content-Security-Policy']).toEqual([CONTENT_SECURITY_POLICY]);
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
  });

  it("is never looser than the renderer's <meta> policy, and sets every directive the meta tag sets", () => {
    const html = readFileSync('renderer/index.html', 'utf8');
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/i.exec(html)?.[1];
    expect(meta, 'renderer/index.html has a CSP meta tag').toBeDefined();
    const directives = (policy: string) =>
      new Map(policy.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...sources]) => [name, sources]));
    const header = directives(CONTENT_SECURITY_POLICY);
    for (const [name, sources] of directives(meta!)) {
      expect(header.has(name), `the header sets ${name}`).toBe(true);
      for (const source of header.get(name)!) expect(sources, `${name} ${source} is allowed by the meta tag too`).toContain(source);
    }
  });

  it('denies every permission request and check (but clipboard writes by the app’s own page), and downloads other than blob:/data:', () => {
    const session = fakeSession();
    const [requestHandler] = session.setPermissionRequestHandler.mock.calls[0] as [
      (wc: unknown, p: string, cb: (ok: boolean) => void, details: { requestingUrl?: string }) => void,
    ];
    const request = (permission: string, requestingUrl: string) => {
      const callback = vi.fn();
      requestHandler({}, permission, callback, { requestingUrl });
      expect(callback).toHaveBeenCalledOnce();
      return callback.mock.calls[0][0];
    };
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'fullscreen', 'pointerLock', 'midiSysex']) {
      expect(request(permission, indexUrl), permission).toBe(false);
    }
    expect(request('clipboard-sanitized-write', indexUrl)).toBe(true);
    expect(request('clipboard-sanitized-write', 'https://example.com/')).toBe(false);
    const [checkHandler] = session.setPermissionCheckHandler.mock.calls[0] as [(...a: unknown[]) => boolean];
    expect(checkHandler({}, 'media', 'file:///', { requestingUrl: indexUrl })).toBe(false);
    expect(checkHandler({}, 'clipboard-read', 'file:///', { requestingUrl: indexUrl })).toBe(false);
    expect(checkHandler({}, 'clipboard-sanitized-write', 'file:///', { requestingUrl: indexUrl })).toBe(true);
    expect(checkHandler({}, 'clipboard-sanitized-write', 'file:///', { requestingUrl: 'file:///tmp/x.html' })).toBe(false);
    expect(checkHandler({}, 'clipboard-sanitized-write', 'file:///', {})).toBe(false);
    const [deviceHandler] = session.setDevicePermissionHandler.mock.calls[0] as [(...a: unknown[]) => boolean];
    expect(deviceHandler({})).toBe(false);

    const download = (url: string) => {
      const event = { preventDefault: vi.fn() };
      session.emit('will-download', event, { getURL: () => url });
      return event.preventDefault.mock.calls.length === 0;
    };
    expect(download('blob:file:///1234')).toBe(true);
    expect(download('https://example.com/malware.exe')).toBe(false);
  });
});

describe('the native menu', () => {
  const actions = { openProject: vi.fn(), openRecent: vi.fn(), exportModel: vi.fn(), about: vi.fn() };
  type Item = { label?: string; role?: string; submenu?: Item[]; click?: () => void; enabled?: boolean; type?: string };
  const find = (items: Item[], label: string) => items.find((i) => i.label === label)!;

  it('has File, Edit, View and Help with the usual items; Recent Projects come from the service', () => {
    const menu = menuTemplate({ isDev: false, platform: 'linux', recent: ['/home/me/flowers', '/data/birds'] }, actions) as Item[];
    expect(menu.map((m) => m.label)).toEqual(['File', 'Edit', 'View', 'Help']);
    const file = find(menu, 'File').submenu!;
    expect(file.filter((i) => i.label).map((i) => i.label)).toEqual(['Open Project…', 'Recent Projects', 'Export Model…', 'Quit']);
    find(file, 'Open Project…').click!();
    expect(actions.openProject).toHaveBeenCalled();
    const recent = find(file, 'Recent Projects').submenu!;
    expect(recent.map((i) => i.label)).toEqual(['flowers — /home/me/flowers', 'birds — /data/birds']);
    recent[1].click!();
    expect(actions.openRecent).toHaveBeenCalledWith('/data/birds');
    find(file, 'Export Model…').click!();
    expect(actions.exportModel).toHaveBeenCalled();
    expect(find(file, 'Quit').role).toBe('quit');
    expect(find(menu, 'Edit').submenu!.map((i) => i.role).filter(Boolean)).toEqual(['undo', 'redo', 'cut', 'copy', 'paste', 'selectAll']);
    find(menu, 'Help').submenu![0].click!();
    expect(actions.about).toHaveBeenCalled();
  });

  it('offers Reload and Toggle DevTools in development only', () => {
    const roles = (isDev: boolean) =>
      (find(menuTemplate({ isDev, platform: 'linux', recent: [] }, actions) as Item[], 'View').submenu ?? []).map((i) => i.role).filter(Boolean);
    expect(roles(false)).toEqual(['resetZoom', 'zoomIn', 'zoomOut', 'togglefullscreen']);
    expect(roles(true)).toEqual(['reload', 'forceReload', 'toggleDevTools', 'resetZoom', 'zoomIn', 'zoomOut', 'togglefullscreen']);
  });

  it('shows a disabled placeholder without recent projects, and the app menu on macOS', () => {
    const menu = menuTemplate({ isDev: false, platform: 'darwin', recent: [] }, actions) as Item[];
    expect(menu[0].role).toBe('appMenu');
    const recent = find(find(menu, 'File').submenu!, 'Recent Projects').submenu!;
    expect(recent).toEqual([{ label: 'No recent projects', enabled: false }]);
  });
});
