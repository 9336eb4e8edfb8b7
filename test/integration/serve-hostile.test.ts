// The real browser host process (`node --import tsx main/host/serve.ts`, what `npm run serve` runs) under
// attack while it trains: hostile messages (deep nesting in every field, huge strings, wrong types) and a
// bounded flood from several sockets, sent while a real training run is in progress. The host must answer
// each with one short error and keep serving, and the training run must go on untouched to the end.
// (Before the fix, the first message — a 10 KB request whose method is a 5,000-deep array — overflowed the
// stack and ended the process, and the training process with it.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import WebSocket from 'ws';
import type { RunRecord } from '../../main/api/training';
import { MAX_ERROR_MESSAGE_CHARS } from '../../main/api/excerpt';
import { hostileMessages } from '../fixtures/hostile-messages';

const REPO = path.resolve(__dirname, '../..');
const EPOCHS = 4;

let tmp: string;
let child: ChildProcess;
let exited: Promise<number | null>;
let log = '';
let origin = '';
let token = '';

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${origin.replace('http', 'ws')}/ws?token=${token}`, { origin });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** A socket with request/response matching and an event log. */
async function client() {
  const ws = await connect();
  const replies = new Map<number, (m: any) => void>();
  const events: any[] = [];
  const eventWaiters: { match: (e: any) => boolean; resolve: (e: any) => void }[] = [];
  const ordered: any[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (typeof m.event === 'string') {
      events.push(m);
      for (const w of [...eventWaiters]) if (w.match(m)) {
        eventWaiters.splice(eventWaiters.indexOf(w), 1);
        w.resolve(m);
      }
      return;
    }
    ordered.push(m);
    replies.get(m.id)?.(m);
    replies.delete(m.id);
  });
  let nextId = 1;
  return {
    ws,
    events,
    ordered,
    async call<T = any>(method: string, params: unknown = {}): Promise<T> {
      const id = nextId++;
      const reply = new Promise<any>((resolve) => replies.set(id, resolve));
      ws.send(JSON.stringify({ id, method, params }));
      const m = await reply;
      if (!m.ok) throw new Error(m.error.message);
      return m.result as T;
    },
    event(match: (e: any) => boolean, timeoutMs = 240_000): Promise<any> {
      const found = events.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such event within ${timeoutMs} ms; server output:\n${log.slice(-3000)}`)), timeoutMs);
        eventWaiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-serve-hostile-'));
  const staticDir = path.join(tmp, 'renderer');
  await mkdir(staticDir, { recursive: true });
  await writeFile(path.join(staticDir, 'index.html'), '<!doctype html><title>Refit</title>');
  // Two classes of small generated images: a reddish and a bluish noise.
  for (const [c, tint] of [
    ['warm', [200, 60, 40]],
    ['cool', [40, 80, 200]],
  ] as const) {
    await mkdir(path.join(tmp, 'data', c), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const px = randomBytes(40 * 40 * 3);
      for (let p = 0; p < px.length; p++) px[p] = (px[p] >> 2) + tint[p % 3] * 0.75;
      await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(path.join(tmp, 'data', c, `${i}.png`));
    }
  }
  const home = path.join(tmp, 'home');
  child = spawn(process.execPath, ['--import', 'tsx', 'main/host/serve.ts', '--port', '0'], {
    cwd: REPO,
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      REFIT_RENDERER_OUT: staticDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const found = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`refit serve printed no URL within 90 s:\n${log}`)), 90_000);
    const check = () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`refit serve exited (${code}) before printing its URL:\n${log}`)));
  });
  origin = found[1];
  token = found[2];
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
    if (!done) child.kill('SIGKILL');
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('refit serve under hostile messages while training', () => {
  it('answers every hostile message and a flood, keeps serving, and the training run is untouched', async () => {
    const main = await client();
    await main.call('project.open', { dir: path.join(tmp, 'project'), create: true });
    const view = await main.call('dataset.addFolders', { folders: [path.join(tmp, 'data')] });
    expect(view.totalImages).toBe(16);
    const config = { backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: 32, head: { kind: 'linear' }, epochs: EPOCHS, batchSize: 4, valSplit: 0.25, seed: 1, augment: false, patience: EPOCHS, classWeights: false };
    const t0 = Date.now();
    const { runId } = await main.call<{ runId: string }>('training.start', { config });
    // Training for real: its first epoch is done.
    await main.event((e) => e.event === 'training.event' && e.payload.runId === runId && e.payload.event.type === 'epoch');
    const firstEpoch = (Date.now() - t0) / 1000;
    const epochsBefore = main.events.filter((e) => e.event === 'training.event' && e.payload.event.type === 'epoch').length;

    // The attack, on its own socket: one reply each, in order. Nothing of it reaches the project.
    const projectJson = () => readFile(path.join(tmp, 'project', 'project.json'), 'utf8');
    const projectBefore = await projectJson();
    const attacker = await client();
    const hostile = hostileMessages(10_000);
    const attackStart = Date.now();
    for (const [i, h] of hostile.entries()) {
      attacker.ws.send(h.data);
      const end = Date.now() + 20_000;
      while (attacker.ordered.length <= i) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no reply to "${h.name}" (server ${child.exitCode === null ? 'running' : `exited with ${child.exitCode}`}):\n${log.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      const reply = attacker.ordered[i];
      expect(reply, h.name).toMatchObject({ id: h.id, ok: false });
      expect(reply.error.message.length, h.name).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS + 80);
    }
    // A bounded flood: 8 sockets × 100 mixed messages (valid, invalid, deep).
    const deep = hostileMessages(0, 16 * 1024).map((h) => h.data);
    const statuses: any[] = [];
    const flood = await Promise.all(
      Array.from({ length: 8 }, async (_, s) => {
        const ws = await connect();
        let n = 0;
        const all = new Promise<void>((resolve) =>
          ws.on('message', (d) => {
            const m = JSON.parse(d.toString());
            if (m.event) return;
            if (m.ok) statuses.push(m.result);
            if (++n === 100) resolve();
          }),
        );
        for (let i = 0; i < 100; i++) ws.send(i % 3 === 0 ? JSON.stringify({ id: i, method: 'training.status', params: {} }) : deep[(i * 5 + s) % deep.length]);
        await all;
        ws.close();
        return n;
      }),
    );
    const attackSeconds = (Date.now() - attackStart) / 1000;
    expect(flood).toEqual(Array(8).fill(100));
    expect(await projectJson()).toBe(projectBefore);
    // The training run was in progress during the flood (the valid requests in it asked).
    expect(statuses.length).toBe(8 * 34);
    expect(statuses.filter((st) => st.runId === runId && st.state === 'running').length).toBeGreaterThan(0);

    // The host still serves, the same run is still going, and it goes on to the end.
    expect(child.exitCode).toBeNull();
    expect((await main.call('app.info')).host).toBe('browser');
    const ended = await main.event((e) => e.event === 'training.ended' && e.payload.runId === runId);
    console.log(`serve under attack: ${hostile.length} hostile messages and 8 × 100 flood messages answered in ${attackSeconds.toFixed(1)} s; training: first epoch at ${firstEpoch.toFixed(0)} s, all ${EPOCHS} done at ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(ended.payload).toEqual({ runId, status: 'completed' });
    const epochs = main.events.filter((e) => e.event === 'training.event' && e.payload.event.type === 'epoch');
    expect(epochs.length).toBe(EPOCHS);
    expect(epochs.length).toBeGreaterThan(epochsBefore); // epochs were trained after the attack too
    const record = await main.call<RunRecord>('runs.get', { runId });
    expect(record.status).toBe('completed');
    expect(record.history.map((h) => h.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    expect(log).not.toMatch(/background operation failed|RangeError|Maximum call stack/);
    main.ws.close();
    attacker.ws.close();

    // And it still stops cleanly.
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 360_000);
});
