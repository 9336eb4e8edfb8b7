import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The engine, models and hosts run in Node, in two projects: 'unit' (test/unit: fast, in-process, no
// builds, child processes or real networks; `npm run test:unit`) and 'integration' (test/integration:
// real backbones, training, child processes, builds). The Svelte renderer's components run in happy-dom
// with the browser build of Svelte ('renderer').
const node = {
  setupFiles: ['test/setup-backend.ts'],
  testTimeout: 120_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    // TF.js keeps one global engine per process: run files in separate forks, few at a time (2 cores).
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], ...node } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], ...node } },
      {
        plugins: [svelte({ configFile: false, compilerOptions: { runes: true } })],
        resolve: { conditions: ['browser'] },
        test: {
          name: 'renderer',
          include: ['test/renderer/**/*.test.ts'],
          environment: 'happy-dom',
          testTimeout: 30_000,
        },
      },
    ],
  },
});
