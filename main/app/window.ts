// The one window: its options (the security settings Refit requires), which URLs are the app's own,
// and what its web contents may do (no navigation, no new windows, no webviews, no devtools in production).
import { BrowserWindow, type WebContents, type WebPreferences } from 'electron';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The security settings every Refit web page runs with (see README → Security). */
export const SECURE_WEB_PREFERENCES = {
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
  // Middle-click would otherwise try to open links in a new window (denied anyway).
  disableBlinkFeatures: 'Auxclick',
} as const satisfies WebPreferences;

export interface AppLocation {
  /** Development: the Vite dev server (Forge's MAIN_WINDOW_VITE_DEV_SERVER_URL). */
  devServerUrl?: string;
  /** Production: the built renderer's index.html (.vite/renderer/<MAIN_WINDOW_VITE_NAME>/index.html). */
  indexHtml: string;
}

export interface AppUrls {
  /** Whether a page (or frame) at this URL is the app's own renderer: trusted for IPC. */
  isAppPage(url: string): boolean;
  /** Whether the renderer may load this URL at all (its own files, inline data, the dev server). */
  isAllowedRequest(url: string): boolean;
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function withoutFragment(url: URL): string {
  return `${url.origin === 'null' ? `${url.protocol}//` : url.origin}${url.pathname}`;
}

export function appUrls(location: AppLocation): AppUrls {
  const inlineSchemes = new Set(['data:', 'blob:']);
  if (location.devServerUrl) {
    const dev = new URL(location.devServerUrl);
    const sameServer = (url: URL) => url.hostname === dev.hostname && url.port === dev.port;
    return {
      isAppPage: (raw) => {
        const url = parse(raw);
        return url !== null && url.protocol === dev.protocol && sameServer(url);
      },
      isAllowedRequest: (raw) => {
        const url = parse(raw);
        if (!url) return false;
        if (inlineSchemes.has(url.protocol) || url.protocol === 'devtools:') return true;
        // The page, its modules, and Vite's hot-reload WebSocket.
        return ['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && sameServer(url);
      },
    };
  }
  const index = pathToFileURL(location.indexHtml);
  const rendererDir = pathToFileURL(path.dirname(location.indexHtml) + path.sep).href;
  return {
    isAppPage: (raw) => {
      const url = parse(raw);
      return url !== null && url.protocol === 'file:' && withoutFragment(url) === withoutFragment(index);
    },
    isAllowedRequest: (raw) => {
      const url = parse(raw);
      if (!url) return false;
      if (inlineSchemes.has(url.protocol)) return true;
      // Chromium hands over canonical URLs, but Node's URL parser (Node 20) leaves ".." after a
      // dot-folder such as ".vite" unresolved: refuse dot segments outright so the prefix check holds.
      if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(url.pathname)) return false;
      return url.protocol === 'file:' && url.href.startsWith(rendererDir);
    },
  };
}

const hardened = new WeakSet<WebContents>();

/** Applies Refit's rules to a web contents (the window's, and any other one Electron creates). */
export function hardenWebContents(contents: WebContents, options: { urls: AppUrls; isDev: boolean }): void {
  if (hardened.has(contents)) return;
  hardened.add(contents);
  // Only a reload of the same page is a navigation the app allows. Refit links nowhere outside itself,
  // so nothing is handed to the system browser either (no shell.openExternal anywhere).
  const guard = (event: Electron.Event, url: string) => {
    const current = parse(contents.getURL());
    const target = parse(url);
    const same = current !== null && target !== null && withoutFragment(current) === withoutFragment(target);
    if (!same || !options.urls.isAppPage(url)) event.preventDefault();
  };
  contents.on('will-navigate', (event, url) => guard(event, event.url ?? url));
  contents.on('will-redirect', (event, url) => guard(event, event.url ?? url));
  contents.on('will-frame-navigate', (event) => {
    if (!event.isMainFrame) event.preventDefault(); // the app has no frames
  });
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.on('will-attach-webview', (event) => event.preventDefault());
  if (!options.isDev) contents.on('devtools-opened', () => contents.closeDevTools());
}

export function createMainWindow(options: { preload: string; location: AppLocation; isDev: boolean }): BrowserWindow {
  // Written out here (not spread from SECURE_WEB_PREFERENCES) so that static checkers such as
  // electronegativity see the settings; the unit test checks they are exactly SECURE_WEB_PREFERENCES.
  const window = new BrowserWindow({
    width: 1280,
    height: 840,
    minWidth: 880,
    minHeight: 600,
    title: 'Refit',
    show: false,
    webPreferences: {
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
      devTools: options.isDev,
      preload: options.preload,
    },
  });
  hardenWebContents(window.webContents, { urls: appUrls(options.location), isDev: options.isDev });
  window.once('ready-to-show', () => window.show());
  const loaded = options.location.devServerUrl ? window.loadURL(options.location.devServerUrl) : window.loadFile(options.location.indexHtml);
  loaded.catch((err: unknown) => console.error('Refit: the window could not load its page:', err));
  return window;
}
