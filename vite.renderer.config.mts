import { defineConfig, type ConfigEnv } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const repo = path.dirname(fileURLToPath(import.meta.url));

/** Electron Forge's Vite plugin passes its own fields in the config env (`forgeConfigSelf` names the window). */
type ForgeEnv = ConfigEnv & { forgeConfigSelf?: { name?: string } };

// The renderer: root renderer/, relative asset URLs (file:// in Electron, any path in the browser host).
// Output: Forge builds it into .vite/renderer/<window name> (where its main-process glue looks for it);
// `vite build -c vite.renderer.config.mts` writes dist/renderer (or $REFIT_RENDERER_OUT), which the
// browser host serves.
export default defineConfig((env: ForgeEnv) => {
  const forgeName = env.forgeConfigSelf?.name;
  const outDir = forgeName
    ? path.join(repo, '.vite', 'renderer', forgeName)
    : path.resolve(repo, process.env.REFIT_RENDERER_OUT ?? 'dist/renderer');
  return {
    root: path.join(repo, 'renderer'),
    base: './',
    plugins: [svelte({ configFile: path.join(repo, 'renderer', 'svelte.config.mjs') })],
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 800,
    },
    server: { strictPort: false },
  };
});
