// Issue 14's plain words, end to end in the browser host with a real (tiny) training run: random-start
// networks behind "Show all", the precise terms under the hood, a run named by its facts and renamed
// (the name survives a reload: it is in run.json), each class's split explained on Data and Results,
// the export downloaded as a zip (unzipped and checked against refit.json), the project renamed and
// moved. Screenshots of each in light and dark go to test-results/screenshots/.
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import extractZip from 'extract-zip';
import type { Page, TestInfo } from '@playwright/test';
import { SCREENSHOTS } from './global-setup';
import { expect, PHOTOS, startRefitServer, test, type RefitServer } from './serve-fixture';

test.describe.configure({ mode: 'serial' });

const CLASSES = { birds: 35, fruit: 26 };
let page: Page;
/** A server of its own (the shared `refit` fixture is another spec's project flow). */
let refit: RefitServer;
let stopServer: () => Promise<void>;

async function shoot(name: string, info: TestInfo) {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await expect(page.locator('html')).toHaveAttribute('data-theme', scheme);
    await page.waitForTimeout(400);
    const file = path.join(SCREENSHOTS, `${name}-${scheme}.png`);
    await page.screenshot({ path: file, animations: 'disabled' });
    await info.attach(`${name}-${scheme}`, { path: file, contentType: 'image/png' });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function go(name: string) {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name, exact: true })).toBeVisible();
}

test.beforeAll(async ({ browser }) => {
  ({ server: refit, stop: stopServer } = await startRefitServer());
  // Two classes of photos5, copied into the server's home: the project is made from this folder.
  const data = path.join(refit.home, 'garden');
  for (const c of Object.keys(CLASSES)) await cp(path.join(PHOTOS, c), path.join(data, c), { recursive: true });
  page = await (await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true })).newPage();
  await page.goto(refit.url);
  await page.getByTestId('start-from-data').click();
  const picker = page.getByRole('dialog', { name: 'Choose a folder of images' });
  await picker.getByLabel('Folder path').fill(data);
  await picker.getByRole('button', { name: 'Select the typed folder' }).click();
  await expect(page.getByRole('list', { name: 'Classes' }).getByRole('listitem')).toHaveCount(2, { timeout: 60_000 });
});

/** Closed inside the last test: a context closed in afterAll races Playwright's per-test trace chunks. */
async function closePage() {
  if (!page || page.isClosed()) return;
  await page.context().close();
}

test.afterAll(async () => {
  await closePage().catch(() => undefined); // only when a test failed before the last one closed it
  await stopServer?.();
});

test('Train: pretrained networks first, random-start ones behind “Show all”, the terms under the hood', async ({}, info) => {
  test.setTimeout(4 * 60_000);
  await page.getByTestId('next-train').click();
  await expect(page.getByRole('heading', { level: 2, name: '1. Starting network' })).toBeVisible();
  await expect(page.getByTestId('backbone-resnet50')).toBeVisible({ timeout: 30_000 });
  const resnet18 = page.getByTestId('backbone-resnet18');
  await expect(resnet18).toHaveCount(0);
  const showAll = page.getByTestId('show-all-backbones');
  await expect(showAll).toHaveText(/Show all \d+ \(\d+ more start from random weights\)/);
  const hood = page.getByTestId('under-the-hood').last();
  await hood.locator('summary').click();
  await expect(hood).toContainText('backbone');
  await expect(hood).toContainText('head-only training');
  await shoot('20-train-pretrained-first', info);

  await showAll.click();
  await expect(resnet18).toBeVisible();
  await expect(showAll).toHaveText('Show only pretrained networks');
  await shoot('21-train-show-all', info);

  // A tiny run of the random-start ResNet-18 (full mode, 32 px, 2 epochs).
  await resnet18.click();
  await page.getByTestId('mode-full').click();
  const advanced = page.locator('details.advanced');
  await advanced.locator(':scope > summary').click();
  await advanced.getByRole('spinbutton', { name: /^Epochs/ }).fill('2');
  await advanced.getByRole('spinbutton', { name: /^Input size \(pixels\)/ }).fill('32');
  await advanced.getByRole('spinbutton', { name: /^Batch size/ }).fill('16');
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('status').getByRole('button', { name: 'See results' })).toBeVisible({ timeout: 180_000 });
  // Chosen once, it stays in view when the list is short again.
  await showAll.click();
  await expect(resnet18).toBeVisible();
});

test('Results: the run is named by its facts, renamed, and the name survives a reload; the split is explained', async ({}, info) => {
  await page.getByRole('status').getByRole('button', { name: 'See results' }).click();
  const title = page.getByTestId('run-title');
  await expect(title).toHaveText(/^ResNet-18 · fully retrained · \d+% · \d+ (s|min)$/);
  await expect(page.getByTestId('run-name')).toHaveText(await title.innerText());
  const summary = page.getByRole('region', { name: 'Run summary' });
  await expect(summary).toContainText(/Run \d{8}-\d{6}-\d{3}-[0-9a-f]{4}/);

  // The split: the run's totals, and per class "N for training, M held back" adding up to the Data screen's count.
  const split = page.getByTestId('run-split');
  const [, train, held] = /^(\d+) for training, (\d+) held back to check the model$/.exec(await split.innerText())!;
  expect(Number(train) + Number(held)).toBe(CLASSES.birds + CLASSES.fruit);
  const note = (await page.getByTestId('split-note').innerText()).replace(/\s+/g, ' ');
  const m = /for example (\w+), (\d+) images on the Data screen — (\d+) for training, (\d+) held back to check the model\./.exec(note)!;
  expect(m).not.toBeNull();
  expect(Number(m[2])).toBe(CLASSES[m[1] as keyof typeof CLASSES]);
  expect(Number(m[3]) + Number(m[4])).toBe(Number(m[2]));
  await shoot('22-results-named', info);

  // Rename: a bad name is refused beside the field; a good one shows everywhere.
  await page.getByTestId('rename-run').click();
  const field = page.getByLabel('Run name');
  await field.fill('x'.repeat(101));
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert')).toHaveText('runs.rename: invalid request — name: a name of at most 100 characters');
  await field.fill('Garden birds, first try');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(title).toHaveText('Garden birds, first try');
  await expect(page.getByTestId('run-name')).toHaveText('Garden birds, first try');
  await shoot('23-results-renamed', info);

  // In run.json, so a reload (a new page, the same server) shows it again.
  const runsDir = path.join(refit.home, 'Refit projects', 'garden', 'runs');
  const [runId] = await readdir(runsDir);
  expect(JSON.parse(await readFile(path.join(runsDir, runId, 'run.json'), 'utf8')).name).toBe('Garden birds, first try');
  await page.reload();
  await go('Results');
  await expect(page.getByTestId('run-title')).toHaveText('Garden birds, first try');
});

test('Data: a class says how many images trained and how many were held back', async ({}, info) => {
  await go('Data');
  const split = page.getByTestId('class-split');
  await expect(split).toContainText('In the run “Garden birds, first try”');
  const [, train, held] = /(\d+) for training, (\d+) held back to check the model/.exec(await split.innerText())!;
  expect(Number(train) + Number(held)).toBe(CLASSES.birds);
  await expect(page.getByTestId('where-images-are')).toContainText('folders are read there, on its disk');
  await shoot('24-data-split', info);
});

test('Export: the model downloads as a zip with the same files refit.json lists', async ({}, info) => {
  test.setTimeout(3 * 60_000);
  await go('Export');
  await expect(page.locator('select')).toContainText('Garden birds, first try');
  await expect(page.getByTestId('export-zip')).toContainText('on the computer running Refit');
  await shoot('25-export-zip', info);
  const downloading = page.waitForEvent('download', { timeout: 120_000 });
  await page.getByTestId('download-zip').click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('Garden birds, first try.zip');
  const zip = path.join(refit.home, 'downloaded.zip');
  await download.saveAs(zip);
  await expect(page.getByRole('status').filter({ hasText: 'Downloaded' })).toBeVisible();
  const out = path.join(refit.home, 'unzipped');
  await mkdir(out);
  await extractZip(zip, { dir: out });
  const manifest = JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8')) as { labels: string[]; files: { path: string; bytes: number; sha256: string }[] };
  expect([...manifest.labels].sort()).toEqual(Object.keys(CLASSES));
  expect((await readdir(out)).sort()).toEqual([...manifest.files.map((f) => f.path), 'refit.json'].sort());
  expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining(['model.json', 'model.onnx']));
  for (const f of manifest.files) {
    const bytes = await readFile(path.join(out, f.path));
    expect(createHash('sha256').update(bytes).digest('hex'), f.path).toBe(f.sha256);
  }
});

test('the project is renamed and moved, and stays open with its run', async ({}, info) => {
  await page.getByTestId('project-settings').click();
  const dialog = page.getByRole('dialog', { name: 'Project name and folder' });
  await dialog.getByTestId('project-name-input').fill('Garden');
  await dialog.getByRole('button', { name: 'Rename' }).click();
  await expect(page.locator('.sidebar .pname')).toHaveText('Garden');
  const from = path.join(refit.home, 'Refit projects', 'garden');
  const to = path.join(refit.home, 'Moved', 'Garden');
  await mkdir(path.dirname(to));
  await dialog.getByLabel('Move the folder to').fill(to);
  await shoot('26-project-move', info);
  await dialog.getByTestId('move-project').click();
  await expect(dialog.getByRole('status')).toContainText(`Moved to ${to}`);
  await expect(dialog).toContainText(`The project’s folder is ${to}`);
  expect((await stat(path.join(to, 'project.json'))).isFile()).toBe(true);
  await expect(stat(from)).rejects.toThrow();
  await dialog.getByRole('button', { name: 'Done' }).click();
  await go('Results');
  await expect(page.getByTestId('run-title')).toHaveText('Garden birds, first try');
  await closePage();
});
