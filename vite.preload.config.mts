import { defineConfig } from 'vite';

// The preload runs in a sandboxed renderer: it must be ONE CommonJS file whose only run-time require is
// 'electron' (no ESM, no chunks). Forge's defaults already do this; the .cjs name keeps it CommonJS under
// package.json's "type": "module". Outside Forge the entry defaults to main/app/preload.ts.
export default defineConfig((env) => {
  const entry = (env as { forgeConfigSelf?: { entry?: string } }).forgeConfigSelf?.entry ?? 'main/app/preload.ts';
  return {
    build: {
      outDir: '.vite/build',
      emptyOutDir: false,
      rollupOptions: {
        input: entry,
        external: ['electron', 'electron/renderer'],
        output: { format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: '[name].cjs' },
      },
    },
  };
});
