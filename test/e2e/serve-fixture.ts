// The real browser host for the end-to-end tests: `node --import tsx main/host/serve.ts --port 0`
// (what `npm run serve` runs after building the renderer; the build is done once in global-setup.ts),
// with HOME and the XDG folders in a fresh temporary folder so that recent projects, settings and
// caches never touch the real ones. The URL with its token is read from the server's stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base } from '@playwright/test';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PHOTOS = path.resolve(REPO, '../shared/datasets/photos5');

export interface RefitServer {
  /** The page URL with its access token, as printed. */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  token: string;
  /** The temporary HOME of the server; projects and exports go under it too. */
  home: string;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
}

const URL_PATTERN = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]+)/;

export async function startRefitServer(): Promise<{ server: RefitServer; stop: () => Promise<void> }> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'refit-e2e-'));
  let log = '';
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'main/host/serve.ts', '--port', '0'], {
    cwd: REPO,
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      TMPDIR: process.env.TMPDIR ?? os.tmpdir(),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stop() can end the server and the training process it started.
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));

  const found = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`refit serve printed no URL within 60 s:\n${log}`)), 60_000);
    const check = () => {
      const m = URL_PATTERN.exec(log);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(m);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`refit serve exited (code ${code}) before printing its URL:\n${log}`));
    });
  });

  const server: RefitServer = {
    url: found[0],
    origin: found[1],
    token: found[2],
    home,
    output: () => log,
  };

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      child.kill('SIGTERM'); // serve.ts cancels a run in progress and closes cleanly
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
      if (!done) {
        try {
          process.kill(-child.pid, 'SIGKILL'); // this server's own process group only
        } catch {
          /* already gone */
        }
        await exited;
      }
    }
    await rm(home, { recursive: true, force: true, maxRetries: 3 });
  };
  return { server, stop };
}

/** `refit`: one real server per worker (the suite runs with one worker, serially). */
export const test = base.extend<{}, { refit: RefitServer }>({
  refit: [
    async ({}, use) => {
      const { server, stop } = await startRefitServer();
      try {
        await use(server);
      } finally {
        await stop();
      }
    },
    { scope: 'worker', timeout: 90_000 },
  ],
});

export { expect } from '@playwright/test';
