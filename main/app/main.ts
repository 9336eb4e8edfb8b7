// The Electron main process: thin glue between Electron and the engine service. Security rules live in
// window.ts (window, web contents) and csp.ts (session); the IPC table in ipc.ts; the menu in menu.ts;
// training in a utilityProcess via utility-training.ts. The engine itself never imports 'electron'.
import { app, BrowserWindow, dialog, ipcMain, Menu, session, utilityProcess } from 'electron';
import path from 'node:path';
import type { AppInfo, DatasetView, MethodName } from '../api/contract';
import { createEngineService } from '../engine/service';
import { installSessionSecurity } from './csp';
import type { ExtraEvents } from '../api/electron-extras';
import { broadcast, registerIpc } from './ipc';
import { menuTemplate, type MenuActions } from './menu';
import { forkTrainingProcess } from './utility-training';
import { appUrls, createMainWindow, hardenWebContents, type AppLocation } from './window';

// Defined by Forge's Vite plugin (renderer named main_window); absent when built without Forge.
declare const MAIN_WINDOW_VITE_DEV_SERVER_URL: string | undefined;
declare const MAIN_WINDOW_VITE_NAME: string | undefined;

// The bundle is CommonJS (.vite/build/main.cjs): preload.cjs, train-worker.cjs and ../renderer/ sit next to it.
const buildDir = __dirname;
const devServerUrl = typeof MAIN_WINDOW_VITE_DEV_SERVER_URL === 'string' ? MAIN_WINDOW_VITE_DEV_SERVER_URL : undefined;
const rendererName = typeof MAIN_WINDOW_VITE_NAME === 'string' ? MAIN_WINDOW_VITE_NAME : 'main_window';
const isDev = devServerUrl !== undefined && !app.isPackaged;
const location: AppLocation = {
  devServerUrl: isDev ? devServerUrl : undefined,
  indexHtml: path.join(buildDir, '..', 'renderer', rendererName, 'index.html'),
};
const urls = appUrls(location);

let mainWindow: BrowserWindow | null = null;
let service: ReturnType<typeof createEngineService> | null = null;

const targets = () => BrowserWindow.getAllWindows().map((window) => window.webContents);
const notify = <E extends keyof ExtraEvents>(event: E, payload: ExtraEvents[E]) => broadcast(targets(), event, payload);

async function refreshMenu(): Promise<void> {
  let recent: string[] = [];
  try {
    recent = ((await service?.call('project.recent', {})) as string[] | undefined) ?? [];
  } catch {
    // a missing or unreadable recent-projects file is an empty list
  }
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate({ isDev, platform: process.platform, recent }, actions)));
}

async function openProjectDir(dir: string): Promise<void> {
  try {
    const view = (await service!.call('project.open', { dir, create: true })) as DatasetView;
    notify('project.opened', view);
  } catch (err) {
    notify('app.error', { message: err instanceof Error ? err.message : String(err) });
  }
  await refreshMenu();
}

const actions: MenuActions = {
  openProject: () => {
    const options: Electron.OpenDialogOptions = {
      title: 'Open or create a Refit project folder',
      buttonLabel: 'Open Project',
      properties: ['openDirectory', 'createDirectory'],
    };
    void (mainWindow ? dialog.showOpenDialog(mainWindow, options) : dialog.showOpenDialog(options)).then(({ canceled, filePaths }) => {
      if (!canceled && filePaths[0]) return openProjectDir(filePaths[0]);
    });
  },
  openRecent: (dir) => void openProjectDir(dir),
  exportModel: () => notify('menu.command', { command: 'export-model' }),
  about: () => {
    void (service?.call('app.info', {}) as Promise<AppInfo> | undefined)
      ?.catch(() => null)
      .then((info) => {
        const backend = info ? `${info.backend.name} (${info.backend.accelerator.toUpperCase()})` : 'not started';
        const options: Electron.MessageBoxOptions = {
          type: 'info',
          title: 'About Refit',
          message: `Refit ${app.getVersion()}`,
          detail: `Fine-tune CNN backbones on your own labelled image folders, offline.\n\nCompute backend: ${backend}\nElectron ${process.versions.electron} · Chromium ${process.versions.chrome} · Node ${process.versions.node}`,
        };
        return mainWindow ? dialog.showMessageBox(mainWindow, options) : dialog.showMessageBox(options);
      });
  },
};

function start(): void {
  installSessionSecurity(session.defaultSession, urls);
  service = createEngineService({
    host: 'electron',
    spawnTraining: () => forkTrainingProcess(utilityProcess, path.join(buildDir, 'train-worker.cjs')),
    recentFile: path.join(app.getPath('userData'), 'recent-projects.json'),
  });
  registerIpc(ipcMain, service, {
    isTrustedSender: urls.isAppPage,
    targets,
    extras: {
      'dialog.chooseFolder': async (params, event) => {
        const options: Electron.OpenDialogOptions = {
          title: params.title ?? 'Choose a folder',
          properties: ['openDirectory', ...(params.multiple ? (['multiSelections'] as const) : []), ...(params.create ? (['createDirectory'] as const) : [])],
        };
        const window = BrowserWindow.fromWebContents(event.sender);
        const { canceled, filePaths } = await (window ? dialog.showOpenDialog(window, options) : dialog.showOpenDialog(options));
        return { paths: canceled ? [] : filePaths };
      },
    },
    onResult: (method: MethodName) => {
      if (method === 'project.open') void refreshMenu();
    },
  });
  void refreshMenu();
  mainWindow = createMainWindow({ preload: path.join(buildDir, 'preload.cjs'), location, isDev });
  mainWindow.on('closed', () => {
    mainWindow = null;
  });
}

// Every renderer is sandboxed, whatever its options say; any web contents gets the same rules as the window.
app.enableSandbox();
app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, { urls, isDev }));

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app
    .whenReady()
    .then(start)
    .catch((err: unknown) => {
      dialog.showErrorBox('Refit could not start', err instanceof Error ? err.message : String(err));
      app.quit();
    });
  app.on('window-all-closed', () => app.quit());
  // Quitting cancels a training run cleanly first (the run is kept, marked cancelled), then quits.
  let disposed = false;
  app.on('before-quit', (event) => {
    if (!service || disposed) return;
    disposed = true;
    event.preventDefault();
    void service.dispose().finally(() => app.quit());
  });
}
