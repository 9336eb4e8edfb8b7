// "Show where the model looks" on screen: a small run trained with the CLI on two photos5 classes,
// opened in the browser; a confusion cell's images get Grad-CAM overlays that are drawn (coloured
// pixels on the canvas over each image) and go away again with one click.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { SCREENSHOTS } from './global-setup';
import { expect, PHOTOS, REPO, startRefitServer, test } from './serve-fixture';

const run = promisify(execFile);

test('Grad-CAM overlays appear over a confusion cell’s images and can be switched off', async ({ browser }, info) => {
  const { server, stop } = await startRefitServer();
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  try {
    const project = path.join(server.home, 'Refit projects', 'Heat');
    await run(
      process.execPath,
      [path.join(REPO, 'bin/refit.mjs'), 'train', path.join(PHOTOS, 'birds'), path.join(PHOTOS, 'fruit'), '--backbone', 'resnet18', '--weights', 'none', '--mode', 'head',
        '--input-size', '64', '--epochs', '1', '--no-augment', '--project', project, '--out', path.join(server.home, 'export'), '--json'],
      { env: { ...process.env, HOME: server.home, XDG_CACHE_HOME: path.join(server.home, '.cache') }, maxBuffer: 16 << 20, timeout: 240_000 },
    );

    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(server.url);
    await page.getByLabel('Project folder').fill(project);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Data' })).toBeVisible({ timeout: 60_000 });
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Results', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Results' })).toBeVisible();

    // The first non-empty cell (diagonal or not) opens its images.
    const cells = page.locator('[data-testid^="cell-"]');
    await expect(cells.first()).toBeVisible({ timeout: 30_000 });
    const counts = await cells.allTextContents();
    const index = counts.findIndex((c) => Number(c.trim()) > 0);
    expect(index).toBeGreaterThanOrEqual(0);
    await cells.nth(index).click();
    const dialog = page.getByRole('dialog');
    const items = dialog.getByTestId('gallery-item');
    const n = await items.count();
    expect(n).toBeGreaterThan(0);

    await dialog.getByLabel('Show where the model looks').check();
    const overlays = dialog.getByTestId('heatmap');
    await expect(overlays).toHaveCount(n, { timeout: 60_000 });
    await expect(overlays.first()).toBeVisible();
    // Drawn: the canvas holds coloured, partly opaque pixels.
    await expect
      .poll(() => overlays.first().evaluate((c: HTMLCanvasElement) => {
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let opaque = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) opaque++;
        return opaque / (data.length / 4);
      }))
      .toBe(1);
    await expect(dialog.getByTestId('under-the-hood')).toContainText('Grad-CAM');
    const file = path.join(SCREENSHOTS, '08c-results-grad-cam-light.png');
    await page.screenshot({ path: file, animations: 'disabled' });
    await info.attach('08c-results-grad-cam-light', { path: file, contentType: 'image/png' });

    await dialog.getByLabel('Show where the model looks').uncheck();
    await expect(overlays).toHaveCount(0);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    await stop();
  }
});
