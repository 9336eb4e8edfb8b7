// `npm run serve`: Refit in a browser. Starts the compute backend, the engine and the local
// HTTP + WebSocket server (127.0.0.1 only, random access token), and prints the URL to open.
//
//   npm run serve [-- --port 8765] [-- --backend wasm]
//
// The renderer must have been built into dist/renderer (or $REFIT_RENDERER_OUT) by
// `npm run build:renderer` (npm run serve does that first).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKENDS } from '../api/backends';
import { initBackend, parseBackendName } from '../engine/backend';
import { createEngineService } from '../engine/service';
import { errorText } from '../api/excerpt';
import { startServer } from './server';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const HELP = `Usage: npm run serve [-- --port N] [-- --backend ${BACKENDS.join('|')}]

Serves the Refit app to a browser on this machine: http://127.0.0.1:PORT/?token=…
  --port N        listen on port N (default: a free port)
  --backend NAME  compute backend (default: the fastest available; also REFIT_BACKEND)
  --help          this text

Only this machine can connect (127.0.0.1), and only with the printed token.
On a remote (e.g. GPU) server, reach it through an SSH tunnel from your own machine:
  ssh -L PORT:127.0.0.1:PORT user@server     (then open the printed URL locally; keep the same port)`;

function fail(message: string): never {
  console.error(`refit serve: ${message}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { port: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  let port = 0;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: expected a port number 0–65535, got "${values.port}"`);
  }
  let requested;
  try {
    requested = values.backend !== undefined ? parseBackendName(values.backend, '--backend') : undefined;
  } catch (err) {
    fail((err as Error).message);
  }

  const staticDir = path.resolve(repo, process.env.REFIT_RENDERER_OUT ?? 'dist/renderer');
  const built = await stat(path.join(staticDir, 'index.html')).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!built) fail(`the app has not been built: ${path.join(staticDir, 'index.html')} is missing. Run npm run build:renderer first (npm run serve does it for you).`);

  const backend = await initBackend(requested ? { requested } : {});
  const service = createEngineService({ host: 'browser' });
  let server;
  try {
    server = await startServer({ port, staticDir, service });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    await service.dispose();
    if (code === 'EADDRINUSE') fail(`port ${port} is already in use: choose another with --port, or leave it out to get a free one`);
    throw err;
  }

  console.log(
    [
      '',
      `Refit is running (compute backend: ${backend.name}, ${backend.accelerator === 'gpu' ? 'GPU' : 'CPU'}).`,
      '',
      `  Open this in a browser on this machine:  ${server.url}`,
      '',
      'The address works only from this machine and only with its token, which changes at every start;',
      'keep it to yourself. For a remote (e.g. GPU) server, use an SSH tunnel from your own machine:',
      `  ssh -L ${server.port}:127.0.0.1:${server.port} user@this-server`,
      'then open the address above in your local browser.',
      '',
      'Press Ctrl-C to stop (a training run in progress is cancelled and keeps its last checkpoint).',
      '',
    ].join('\n'),
  );

  // A failure that nobody awaited must not end the host: the training process stops when this one does.
  // Request handling itself is total (server.ts); this is the last net, and it only logs.
  process.on('unhandledRejection', (reason) => {
    console.error(`refit serve: a background operation failed (the server keeps running): ${errorText(reason)}`);
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.error('refit serve: stopping at once');
      process.exit(130);
    }
    stopping = true;
    console.error(`\nrefit serve: ${signal}: stopping…`);
    await server.close();
    await service.dispose();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('interrupted'));
  process.on('SIGTERM', () => void stop('terminated'));
}

main().catch((err) => {
  console.error(`refit serve: ${(err as Error).message}`);
  process.exit(1);
});
