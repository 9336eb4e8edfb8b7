import { builtinModules } from 'node:module';
import { defineConfig } from 'vite';
import { RUNTIME_PACKAGES } from './main/app/runtime-packages';

// Used by Forge for two entries: the main process (main/app/main.ts) and the training worker that runs
// in a utilityProcess (main/engine/train-worker.ts). Both are bundled as CommonJS with a .cjs extension,
// because package.json says "type": "module" (a .js bundle would be parsed as ESM and fail).
// Outside Forge (`vite build -c vite.main.config.mts`) the entry defaults to the main process.
// (Forge merges these lists with its own, so they must be names and patterns, not a function.)
const external = [
  'electron',
  'electron/main',
  'electron/common',
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
  ...RUNTIME_PACKAGES.map((name) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(/.*)?$`)),
];

export default defineConfig((env) => {
  const entry = (env as { forgeConfigSelf?: { entry?: string } }).forgeConfigSelf?.entry ?? 'main/app/main.ts';
  return {
    build: {
      outDir: '.vite/build',
      emptyOutDir: false,
      lib: { entry, formats: ['cjs'], fileName: () => '[name].cjs' },
      rollupOptions: {
        // Electron, Node built-ins and the native/wasm/weights packages load from node_modules at run time.
        external,
        // The engine is ESM and uses import.meta.url (createRequire, its own folder); CommonJS output
        // would turn it into `{}.url` (undefined). Give it the bundle's own file URL instead.
        output: {
          banner: 'var __refitImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
          // `import('onnxruntime-node')` (and any other dynamic import of an external package) becomes a
          // plain `require` inside a promise: Electron has shipped regressions for dynamic import() from
          // CommonJS inside app.asar, and such a failure is silent (forward passes fall back to TF.js).
          dynamicImportInCjs: false,
          // One file per process (main.cjs, train-worker.cjs): the engine's lazy `import('./…')` of its own
          // modules is inlined instead of split into chunks next to the bundles.
          codeSplitting: false,
        },
      },
    },
    define: { 'import.meta.url': '__refitImportMetaUrl' },
    resolve: { conditions: ['node'], mainFields: ['module', 'jsnext:main', 'jsnext'] },
  };
});
