// `npm run bench:host [-- SOCKETS REQUESTS]`: the browser host (`main/host/serve.ts`, a real process on
// 127.0.0.1) under many concurrent clients: SOCKETS sockets (default 16, the host's limit) send REQUESTS
// requests in all (default 20,000; a third malformed), bounded in count and time (60 s). Prints requests
// served, errors, the rate and the host's peak memory (VmHWM).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

const SOCKETS = Number(process.argv[2] ?? 16);
const REQUESTS = Number(process.argv[3] ?? 20_000);
const DEADLINE_MS = 60_000;
const REPO = path.resolve(import.meta.dirname, '..');

const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-host-'));
const staticDir = path.join(tmp, 'renderer');
await mkdir(staticDir, { recursive: true });
await writeFile(path.join(staticDir, 'index.html'), '<!doctype html><title>Refit</title>');
const home = path.join(tmp, 'home');
const child = spawn(process.execPath, ['--import', 'tsx', 'main/host/serve.ts', '--port', '0'], {
  cwd: REPO,
  env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache'), REFIT_RENDERER_OUT: staticDir },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let log = '';
child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
const peak = async () => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
try {
  const [, origin, token] = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from refit serve:\n${log}`)), 90_000);
    child.stdout!.on('data', () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]+)/.exec(log);
      if (m) (clearTimeout(timer), resolve(m));
    });
  });
  const idleMb = await peak();
  const perSocket = Math.ceil(REQUESTS / SOCKETS);
  const messages = [
    (id: number) => JSON.stringify({ id, method: 'app.info', params: {} }),
    (id: number) => JSON.stringify({ id, method: 'training.status', params: {} }),
    (id: number) => JSON.stringify({ id, method: 'models.list', params: {} }),
    (id: number) => JSON.stringify({ id, method: 'fs.listDir', params: { dir: REPO } }),
    (id: number) => JSON.stringify({ id, method: 'project.open', params: { dir: 42 } }),
    (id: number) => JSON.stringify({ id, method: [[[['deep']]]], params: null }),
  ];
  let served = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SOCKETS }, async (_, s) => {
      const ws = new WebSocket(`${origin.replace('http', 'ws')}/ws?token=${token}`, { origin });
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
      let got = 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, DEADLINE_MS);
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString());
          if (m.event) return;
          if (m.ok) served++;
          else errors++;
          if (++got === perSocket) (clearTimeout(timer), resolve());
        });
        for (let i = 0; i < perSocket; i++) ws.send(messages[(i + s) % messages.length](i));
      });
      ws.close();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(`sockets          ${SOCKETS}`);
  console.log(`requests         ${SOCKETS * perSocket} sent, ${served} answered ok, ${errors} answered with an error (malformed on purpose: ${Math.round((SOCKETS * perSocket) / 3)}), ${SOCKETS * perSocket - served - errors} unanswered`);
  console.log(`time             ${seconds.toFixed(1)} s, ${((served + errors) / seconds).toFixed(0)} replies/s`);
  console.log(`host memory      ${idleMb.toFixed(0)} MiB idle peak → ${(await peak()).toFixed(0)} MiB peak under load`);
  console.log(`host alive       ${child.exitCode === null ? 'yes' : `no (exit ${child.exitCode})`}`);
} finally {
  child.kill('SIGTERM');
  await rm(tmp, { recursive: true, force: true });
}
