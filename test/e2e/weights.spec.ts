// A backbone card's ImageNet weights in the real app (browser host, real engine): ResNet-18 starts from
// random weights and says so; "Get ImageNet weights (45 MB)" downloads from a 127.0.0.1 server (named by
// REFIT_WEIGHTS_BASE_URL, sending slowly) with a progress bar and Cancel; "Import weights file…" imports
// a real torch.save'd ResNet-18 (made here with /usr/bin/python3 + torchvision), after which the card
// names its weights and the network is offered with them.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, PHOTOS, startRefitServer, test, type RefitServer } from './serve-fixture';

test.describe.configure({ mode: 'serial' });

const PYTHON = '/usr/bin/python3';
const hasTorchvision = existsSync(PYTHON) && (() => { try { execFileSync(PYTHON, ['-c', 'import torchvision'], { stdio: 'ignore' }); return true; } catch { return false; } })();

let page: Page;
let refit: RefitServer;
let stopServer: () => Promise<void>;
let files: http.Server;
let pth: string;

test.beforeAll(async ({ browser }) => {
  test.skip(!hasTorchvision && !process.env.CI, 'needs /usr/bin/python3 with torchvision');
  test.setTimeout(4 * 60_000);
  // The seeded file, served 256 KB per 50 ms: slow enough to watch and cancel.
  files = http.createServer((req, res) => {
    void readFile(pth).then((file) => {
      res.writeHead(200, { 'content-length': file.length });
      let at = 0;
      const next = () => {
        if (res.destroyed) return;
        if (at >= file.length) return void res.end();
        res.write(file.subarray(at, (at += 256 * 1024)));
        setTimeout(next, 50);
      };
      next();
    });
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  process.env.REFIT_WEIGHTS_BASE_URL = `http://127.0.0.1:${(files.address() as AddressInfo).port}/`;
  ({ server: refit, stop: stopServer } = await startRefitServer());
  delete process.env.REFIT_WEIGHTS_BASE_URL;
  pth = path.join(refit.home, 'resnet18-seeded.pth');
  execFileSync(PYTHON, ['-c', `import torch, torchvision\ntorch.manual_seed(7)\ntorch.save(torchvision.models.resnet18(weights=None).state_dict(), ${JSON.stringify(pth)})`], { timeout: 120_000 });
  const data = path.join(refit.home, 'garden');
  for (const c of ['birds', 'fruit']) await cp(path.join(PHOTOS, c), path.join(data, c), { recursive: true });
  page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
  await page.goto(refit.url);
  await page.getByTestId('start-from-data').click();
  const picker = page.getByRole('dialog', { name: 'Choose a folder of images' });
  await picker.getByLabel('Folder path').fill(data);
  await picker.getByRole('button', { name: 'Select the typed folder' }).click();
  await expect(page.getByRole('list', { name: 'Classes' }).getByRole('listitem')).toHaveCount(2, { timeout: 60_000 });
});

test.afterAll(async () => {
  await page?.context().close();
  await stopServer?.();
  files?.closeAllConnections();
  if (files) await new Promise((resolve) => files.close(resolve));
});

test('a random-start card downloads with progress and cancel, imports a file, then names its weights', async () => {
  test.setTimeout(4 * 60_000);
  await page.getByTestId('next-train').click();
  await expect(page.getByTestId('backbone-resnet50')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('weights-resnet50')).toHaveText('ImageNet weights · Keras, bundled with Refit');
  await page.getByTestId('show-all-backbones').click();
  const card = page.getByTestId('backbone-resnet18');
  const weights = page.getByTestId('weights-resnet18');
  await expect(card).toContainText('Random start');
  await expect(card).not.toContainText('good first choice');
  await expect(weights).toContainText('Random start: no ImageNet weights on this computer yet.');

  await weights.getByRole('button', { name: 'Get ImageNet weights (45 MB)' }).click();
  const bar = weights.getByRole('progressbar', { name: 'Downloading ImageNet weights' });
  await expect(bar).toBeVisible();
  await expect(weights).toContainText(/MB of 44\.7 MB · [\d.]+ (KB|MB)\/s · about .* left/, { timeout: 30_000 });
  await weights.getByRole('button', { name: 'Cancel download' }).click();
  await expect(weights.getByRole('alert')).toContainText("Download of resnet18's weights cancelled");
  await expect(bar).toHaveCount(0);
  // The click on the card's buttons did not choose ResNet-18.
  await expect(card).not.toHaveClass(/selected/);
  // A click on the card itself (its middle, as a person would) still chooses it.
  await card.click();
  await expect(card).toHaveClass(/selected/);

  await weights.getByRole('button', { name: 'Import weights file…' }).click();
  await weights.getByLabel('Path of the weights file').fill(pth);
  await weights.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(weights).toHaveText('ImageNet weights · torchvision · 44.7 MB', { timeout: 60_000 });
  await expect(card.locator('.badge')).toHaveText('ImageNet weights');
  await expect(card).toHaveClass(/selected/);
});
