// Builds the renderer into dist/renderer once before the end-to-end tests (what `npm run serve`
// does before starting the server), and clears the previous screenshots.
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './serve-fixture';

export const SCREENSHOTS = path.join(REPO, 'test-results', 'screenshots');

export default async function globalSetup(): Promise<void> {
  await rm(SCREENSHOTS, { recursive: true, force: true });
  await mkdir(SCREENSHOTS, { recursive: true });
  if (process.env.REFIT_E2E_SKIP_BUILD === '1') return;
  execFileSync(process.execPath, [path.join(REPO, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '-c', 'vite.renderer.config.mts', '--logLevel', 'warn'], {
    cwd: REPO,
    stdio: 'inherit',
  });
}
