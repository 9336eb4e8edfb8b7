// The first run without decisions (issue 14): a fresh Refit (its own server and home folder), the
// first screen invites the images; choosing photos5 makes a project named after it in
// "<home>/Refit projects" and adds its five classes — no project folder chosen first.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SCREENSHOTS } from './global-setup';
import { expect, PHOTOS, startRefitServer, test } from './serve-fixture';

test('start from the images: a project named after the data, in Refit projects, with its classes', async ({ browser }, info) => {
  const { server, stop } = await startRefitServer();
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(server.url);
    await expect(page.getByRole('heading', { level: 1, name: 'Start a project' })).toBeVisible();
    const drop = page.getByRole('region', { name: 'Drop a folder of images to start' });
    await expect(drop).toContainText(path.join(server.home, 'Refit projects'));
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await expect(page.locator('html')).toHaveAttribute('data-theme', scheme);
      await page.waitForTimeout(300);
      const file = path.join(SCREENSHOTS, `00-start-${scheme}.png`);
      await page.screenshot({ path: file, animations: 'disabled' });
      await info.attach(`00-start-${scheme}`, { path: file, contentType: 'image/png' });
    }
    await page.emulateMedia({ colorScheme: 'light' });

    await page.getByTestId('start-from-data').click();
    const picker = page.getByRole('dialog', { name: 'Choose a folder of images' });
    await picker.getByLabel('Folder path').fill(PHOTOS);
    await picker.getByRole('button', { name: 'Select the typed folder' }).click();

    await expect(page.getByRole('heading', { level: 1, name: 'Data' })).toBeVisible();
    await expect(page.locator('.sidebar .pname')).toHaveText('photos5');
    await expect(page.getByRole('list', { name: 'Classes' }).getByRole('listitem')).toHaveCount(5, { timeout: 60_000 });
    await expect(page.locator('.screen-head p')).toContainText('168 images in 5 classes');
    expect((await stat(path.join(server.home, 'Refit projects', 'photos5', 'project.json'))).isFile()).toBe(true);
    await expect(page.getByTestId('next-train')).toBeVisible();
    const file = path.join(SCREENSHOTS, '00-start-data-light.png');
    await page.screenshot({ path: file, animations: 'disabled' });
    await info.attach('00-start-data-light', { path: file, contentType: 'image/png' });
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    await stop();
  }
});
