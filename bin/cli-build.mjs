// The compiled `refit` CLI: main/host/cli.ts (and the training worker it forks) bundled to plain
// JavaScript with esbuild — the bundler Vite ships — into dist/cli/<key>/, where <key> is a digest of
// every source file's path, size and modification time (and of this file and package.json). So the
// CLI never transpiles TypeScript at run time: `npm ci` builds it (the "prepare" script), and the
// first run after a source change rebuilds it once (about a second) before running it.
//
// Packages stay external (loaded from node_modules at run time) and dynamic imports stay separate
// chunks, so TF.js, sharp and onnxruntime load only in the commands that use them. A build is written
// to a temporary folder and renamed into place, so concurrent first runs never see half a build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['main', 'models'];
const EXTRA = ['package.json', 'bin/cli-build.mjs', 'tsconfig.json'];
const ENTRIES = { cli: 'main/host/cli.ts', 'train-worker': 'main/engine/train-worker.ts' };
export const CLI_DIR = path.join(ROOT, 'dist', 'cli');

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p, out);
    } else if (/\.(ts|mts|js|mjs|json)$/.test(e.name)) out.push(p);
  }
}

/** A digest of the sources' paths, sizes and modification times: changes whenever a source does. */
export function sourceKey() {
  const files = [];
  for (const dir of SOURCES) walk(path.join(ROOT, dir), files);
  files.sort();
  const hash = createHash('sha256');
  for (const file of [...files, ...EXTRA.map((f) => path.join(ROOT, f))]) {
    try {
      const s = statSync(file);
      hash.update(`${path.relative(ROOT, file)}\0${s.size}\0${s.mtimeMs}\n`);
    } catch {
      hash.update(`${path.relative(ROOT, file)}\0missing\n`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds the CLI into dist/cli/<key>/ unless it is there; returns the path of its entry file. */
export async function ensureCli({ quiet = false } = {}) {
  const key = sourceKey();
  const dir = path.join(CLI_DIR, key);
  const entry = path.join(dir, 'cli.mjs');
  if (existsSync(entry)) return entry;
  const tmp = path.join(CLI_DIR, `.tmp-${process.pid}-${Date.now()}`);
  const started = performance.now();
  const { build } = await import('esbuild');
  try {
    await build({
      absWorkingDir: ROOT,
      entryPoints: ENTRIES,
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20.19',
      packages: 'external',
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunk-[hash]',
      sourcemap: 'linked',
      logLevel: 'warning',
    });
    try {
      renameSync(tmp, dir);
    } catch (err) {
      if (!existsSync(entry)) throw err; // another process finished the same build first: use it
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  pruneOld(key);
  // Said only on a terminal: scripts and tests read the command's own stderr.
  if (!quiet && process.stderr.isTTY) process.stderr.write(`refit: compiled the CLI in ${((performance.now() - started) / 1000).toFixed(1)} s (dist/cli/${key})\n`);
  return entry;
}

/** Removes builds of older sources (not touched for an hour, so that a running CLI keeps its files). */
function pruneOld(keep) {
  let names;
  try {
    names = readdirSync(CLI_DIR);
  } catch {
    return;
  }
  const hourAgo = Date.now() - 3600_000;
  for (const name of names) {
    if (name === keep) continue;
    const p = path.join(CLI_DIR, name);
    try {
      if (statSync(p).mtimeMs < hourAgo) rmSync(p, { recursive: true, force: true });
    } catch {
      // gone already
    }
  }
}

// `node bin/cli-build.mjs` (the "prepare" script): build now.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const entry = await ensureCli({ quiet: true });
  console.log(`refit CLI: ${path.relative(ROOT, entry)}`);
}
