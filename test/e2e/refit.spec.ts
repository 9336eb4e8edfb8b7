// Refit end to end, in a real browser against `npm run serve`'s server with the real engine and real
// training on photos5: project → data → train → results → cancel a second run → classify → export
// → the exported folder loads with plain @tensorflow/tfjs in Node and gives the same top label.
// One serial flow (each step builds on the previous one); screenshots of every screen in light and
// dark go to test-results/screenshots/ and are attached to the report.
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Browser, Locator, Page, TestInfo } from '@playwright/test';
import { decodeImage } from '../../main/engine/image-decode';
import { preprocess } from '../../models/preprocess';
import type { Preprocessing } from '../../models/types';
import { SCREENSHOTS } from './global-setup';
import { expect, PHOTOS, test, type RefitServer } from './serve-fixture';

const CLASSES: Record<string, number> = { birds: 35, flowers: 25, fruit: 26, mammals: 64, vegetables: 18 };
const TOTAL = Object.values(CLASSES).reduce((a, b) => a + b, 0);
/** The image classified in the browser and, after export, in Node. */
const PROBE = path.join(PHOTOS, 'birds', 'blackbird.png');

test.describe.configure({ mode: 'serial' });

let page: Page;
const consoleErrors: string[] = [];
let projectDir: string;
let exportDir: string;
/** What the UI said about PROBE. */
let uiTop: { label: string; percent: string }[] | null = null;

const VIEWPORT = { width: 1360, height: 900 };

/**
 * Screenshots of the current screen in light and dark, saved under test-results/screenshots/ and
 * attached: `NAME-SCHEME.png` is the window as a person sees it (1360×900); when the screen scrolls
 * (the app scrolls inside <main>, so Playwright's fullPage cannot show it), `NAME-SCHEME-full.png`
 * is taken with the window as tall as the content.
 */
async function shoot(name: string, info: TestInfo, prepare?: () => Promise<void>) {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await expect(page.locator('html')).toHaveAttribute('data-theme', scheme);
    if (prepare) await prepare();
    await page.waitForTimeout(400); // charts redraw with the theme's colours; transitions settle
    const file = path.join(SCREENSHOTS, `${name}-${scheme}.png`);
    await page.screenshot({ path: file, animations: 'disabled' });
    await info.attach(`${name}-${scheme}`, { path: file, contentType: 'image/png' });
    const height = await page.evaluate(() => document.querySelector('main')?.scrollHeight ?? 0);
    if (height > VIEWPORT.height + 4) {
      await page.setViewportSize({ width: VIEWPORT.width, height: Math.min(4000, height) });
      await page.waitForTimeout(400);
      const full = path.join(SCREENSHOTS, `${name}-${scheme}-full.png`);
      await page.screenshot({ path: full, animations: 'disabled' });
      await info.attach(`${name}-${scheme}-full`, { path: full, contentType: 'image/png' });
      await page.setViewportSize(VIEWPORT);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

function nav(name: string): Locator {
  return page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true });
}

async function go(name: string) {
  await nav(name).click();
  await expect(nav(name)).toHaveAttribute('aria-current', 'page');
  await expect(page.getByRole('heading', { level: 1, name, exact: true })).toBeVisible();
}

/** The Train screen's settings for a run: backbone card, mode, and the Advanced fields. */
async function configureRun(opts: { mode: 'head' | 'finetune' | 'full'; epochs: number; inputSize: number; batchSize: number }) {
  const card = page.getByTestId('backbone-resnet18');
  // ResNet-18 starts from random weights here: it waits behind "Show all" until chosen once.
  if (!(await card.isVisible())) await page.getByTestId('show-all-backbones').click();
  await card.click();
  await expect(card).toHaveClass(/selected/);
  await expect(card).toContainText('ResNet-18');
  await page.getByTestId(`mode-${opts.mode}`).click();
  await expect(page.getByTestId(`mode-${opts.mode}`).getByRole('radio')).toBeChecked();
  const advanced = page.locator('details.advanced');
  if (!(await advanced.evaluate((d) => (d as HTMLDetailsElement).open))) await advanced.locator(':scope > summary').click();
  await advanced.getByRole('spinbutton', { name: /^Epochs/ }).fill(String(opts.epochs));
  await advanced.getByRole('spinbutton', { name: /^Input size \(pixels\)/ }).fill(String(opts.inputSize));
  await advanced.getByRole('spinbutton', { name: /^Batch size/ }).fill(String(opts.batchSize));
  // ResNet-18 has no ImageNet weights here: the box is off and disabled ("weights none").
  await expect(advanced.getByLabel(/Start from ImageNet weights/)).not.toBeChecked();
}

/**
 * Records, inside the page every 50 ms, what the live training panel shows: the progress bar's text,
 * the epochs counted, and the loss chart's latest point. Returns a reader of what was seen.
 */
async function recordTrainingPanel(): Promise<() => Promise<{ progress: string[]; epochsWhileRunning: string[] }>> {
  await page.evaluate(() => {
    const w = window as unknown as { __refitTrace?: { progress: string[]; epochsWhileRunning: string[] }; __refitTimer?: number };
    if (w.__refitTimer) clearInterval(w.__refitTimer);
    const trace = { progress: [] as string[], epochsWhileRunning: [] as string[] };
    w.__refitTrace = trace;
    w.__refitTimer = window.setInterval(() => {
      const live = document.querySelector('section[aria-labelledby="live-heading"]');
      if (!live) return;
      const bar = live.querySelector('[role="progressbar"]');
      if (bar) {
        const label = live.querySelector('.progress .label')?.textContent ?? '';
        const text = `${label} | ${bar.getAttribute('aria-valuetext') ?? ''}`;
        if (trace.progress.at(-1) !== text) trace.progress.push(text);
        const epochs = live.querySelector('.stats .v')?.textContent ?? '0';
        const chart = live.querySelector('figure.chart p')?.textContent ?? '';
        const seen = `${epochs} | ${chart}`;
        if (epochs !== '0' && trace.epochsWhileRunning.at(-1) !== seen) trace.epochsWhileRunning.push(seen);
      }
    }, 50);
  });
  return () =>
    page.evaluate(() => {
      const w = window as unknown as { __refitTrace: { progress: string[]; epochsWhileRunning: string[] }; __refitTimer?: number };
      clearInterval(w.__refitTimer);
      return w.__refitTrace;
    });
}

test.beforeAll(async ({ browser, refit }: { browser: Browser; refit: RefitServer }) => {
  projectDir = path.join(refit.home, 'projects', 'photos5');
  exportDir = path.join(refit.home, 'exports', 'photos5-resnet18');
  const context = await browser.newContext({ viewport: VIEWPORT, colorScheme: 'light' });
  page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
});

test.afterAll(async () => {
  await page?.context().close();
});

test('the server refuses requests without the token', async ({ refit, browser }) => {
  const bare = await fetch(`${refit.origin}/`);
  expect(bare.status).toBe(401);
  expect(await bare.text()).toContain('needs the access token');
  const wrong = await fetch(`${refit.origin}/?token=${'x'.repeat(43)}`);
  expect(wrong.status).toBe(403);
  const asset = await fetch(`${refit.origin}/index.html`);
  expect(asset.status).toBe(401);

  // And in the browser: without the token the page is not served.
  const stranger = await browser.newContext();
  const p = await stranger.newPage();
  const response = await p.goto(`${refit.origin}/`);
  expect(response?.status()).toBe(401);
  await stranger.close();
});

test('open the URL and create a project', async ({ refit }, info) => {
  const response = await page.goto(refit.url);
  expect(response?.status()).toBe(200);
  // No project to open yet: creating one is the main step, in a suggested folder named after it.
  await expect(page.getByRole('heading', { name: 'Start a project' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Create' })).toHaveClass(/primary/);
  await expect(page.getByRole('button', { name: 'Open', exact: true })).not.toHaveClass(/primary/);
  await expect(page.getByLabel('Project folder')).toHaveValue(path.join(refit.home, 'Refit projects', 'My project'));
  await page.getByLabel(/Name for a new project/).fill('Garden birds');
  await expect(page.getByLabel('Project folder')).toHaveValue(path.join(refit.home, 'Refit projects', 'Garden birds'));
  // The backend in use is always visible.
  await expect(page.locator('.sidebar .backend')).toContainText(/wasm|cpu|CPU/i);
  await shoot('01-project', info);

  // A project folder that does not exist: said so, with advice that fits (no "project.json", no "restart").
  await page.getByLabel('Project folder').fill(path.join(refit.home, 'nowhere', 'gone'));
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  const banner = page.getByTestId('error-banner');
  await expect(banner).toContainText('Couldn’t open the project');
  await expect(banner).toContainText('There is no folder');
  await expect(banner).toContainText('may have been moved, renamed or deleted');
  await expect(banner).not.toContainText('project.json');
  await expect(banner).not.toContainText(/restart|rescan/);
  await shoot('01b-project-missing', info);

  // The folder browser starts at the nearest folder that exists and offers to make the new one.
  await page.getByLabel('Project folder').fill(projectDir);
  await page.getByRole('button', { name: 'Browse…' }).click();
  const picker = page.getByRole('dialog', { name: 'Choose the project folder' });
  await expect(picker.getByTestId('folder-missing')).toContainText('There is no folder');
  await picker.getByRole('button', { name: 'New folder' }).click();
  await picker.getByLabel(/New folder in/).fill('Made here');
  await shoot('01c-folder-picker', info);
  await picker.getByRole('button', { name: 'Make folder' }).click();
  await expect(picker.getByLabel('Folder path')).toHaveValue(/Made here$/);
  expect((await stat(path.join(await picker.getByLabel('Folder path').inputValue()))).isDirectory()).toBe(true);
  await picker.getByRole('button', { name: 'Cancel' }).click();
  await expect(picker).toBeHidden();

  await page.getByLabel('Project folder').fill(projectDir);
  await page.getByLabel(/Name for a new project/).fill('Photos 5');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Data' })).toBeVisible();
  await expect(page.locator('.sidebar .pname')).toHaveText('Photos 5');
  expect((await stat(path.join(projectDir, 'project.json'))).isFile()).toBe(true);
  await expect(page.getByRole('button', { name: 'Add folder' })).toBeVisible();
  // The project panel's error was about choosing a project: it is gone now that one is open.
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await shoot('02-data-empty', info);

  // Classify with no trained model: disabled, saying why, with the way to Train.
  await go('Classify');
  await expect(page.getByRole('button', { name: 'Classify images' })).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Classify images' })).toHaveAttribute('title', /Train a model first/);
  await expect(page.getByTestId('classify-no-model')).toBeVisible();
  await expect(page.getByText('Nothing leaves this computer')).toHaveCount(0); // the browser host uploads to its server
  await shoot('02b-classify-no-model', info);
  await go('Data');
});

test('Add folder: photos5 gives five classes with their counts and an imbalance warning', async ({}, info) => {
  await page.getByRole('button', { name: 'Add folder' }).click();
  const picker = page.getByRole('dialog', { name: 'Add a folder of images' });
  await expect(picker).toBeVisible();
  await picker.getByLabel('Folder path').fill(PHOTOS);
  await picker.getByRole('button', { name: 'Go', exact: true }).click();
  // photos5 holds one folder per class.
  const folders = picker.getByRole('list', { name: `Folders in ${PHOTOS}` });
  for (const name of Object.keys(CLASSES)) await expect(folders.getByRole('button', { name, exact: true })).toBeVisible();
  await picker.getByRole('button', { name: 'Select this folder' }).click();
  await expect(picker).toBeHidden();

  const classList = page.getByRole('list', { name: 'Classes' });
  await expect(classList.getByRole('listitem')).toHaveCount(5, { timeout: 60_000 });
  for (const [name, count] of Object.entries(CLASSES)) {
    const button = classList.locator('button.select', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });
    await expect(button.locator('.count')).toHaveText(String(count));
  }
  await expect(page.locator('.screen-head p')).toContainText(`${TOTAL} images in 5 classes`);
  await expect(page.getByTestId('next-train')).toBeVisible();

  const problems = page.getByRole('region', { name: 'Problems and warnings' });
  await expect(problems).toBeVisible();
  await expect(problems.getByRole('listitem').filter({ hasText: 'imbalanced' })).toContainText(/"mammals" has 64 images, "vegetables" 18/);
  await expect(problems).toContainText('0 skipped files');

  // The first class's thumbnails are made by the engine.
  await expect(page.getByRole('region', { name: 'Images' }).locator('img').first()).toBeVisible({ timeout: 30_000 });
  await shoot('03-data', info, async () => {
    await expect(page.getByRole('region', { name: 'Images' }).locator('img').first()).toBeVisible();
  });
  // The Data screen grows with the window, so its problems panel gets a picture of its own.
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await expect(page.locator('html')).toHaveAttribute('data-theme', scheme);
    const file = path.join(SCREENSHOTS, `03-data-problems-${scheme}.png`);
    await problems.screenshot({ path: file, animations: 'disabled' });
    await info.attach(`03-data-problems-${scheme}`, { path: file, contentType: 'image/png' });
  }
  await page.emulateMedia({ colorScheme: 'light' });
});

test('Train: a small run shows progress, ETA and curves while it trains, then finishes', async ({}, info) => {
  test.setTimeout(5 * 60_000);
  await go('Data');
  await page.getByTestId('next-train').click();
  await expect(page.getByRole('heading', { level: 1, name: 'Train' })).toBeVisible();
  await expect(page.getByTestId('backbone-resnet50')).toBeVisible({ timeout: 30_000 });
  await configureRun({ mode: 'full', epochs: 3, inputSize: 32, batchSize: 16 });
  // Nothing to cancel yet; Start stays in view below the open settings.
  await expect(page.getByRole('button', { name: 'Cancel training' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Start training' })).toBeInViewport();
  await shoot('04-train-setup', info);

  const readTrace = await recordTrainingPanel();
  const started = Date.now();
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('button', { name: 'Cancel training' })).toBeEnabled({ timeout: 30_000 });
  await expect(page.locator('#live-heading')).toHaveText('Training');
  const bar = page.locator('section[aria-labelledby="live-heading"]').getByRole('progressbar');
  await expect(bar).toHaveAttribute('aria-valuetext', /ETA/, { timeout: 120_000 });
  await shoot('05-train-running', info);

  await expect(page.locator('#live-heading')).toHaveText('Last run', { timeout: 4 * 60_000 });
  const seconds = (Date.now() - started) / 1000;
  const trace = await readTrace();
  info.annotations.push({ type: 'training', description: `run 1: ${seconds.toFixed(1)} s; ${trace.progress.length} progress states; ${JSON.stringify(trace.epochsWhileRunning)}` });
  console.log(`run 1 took ${seconds.toFixed(1)} s; progress states seen:\n  ${trace.progress.join('\n  ')}\nepochs seen while running:\n  ${trace.epochsWhileRunning.join('\n  ')}`);

  // The bar moved through several states, with an ETA, and the curves got points while training.
  expect(new Set(trace.progress).size).toBeGreaterThanOrEqual(2);
  expect(trace.progress.some((p) => /ETA \S+/.test(p))).toBe(true);
  const percents = trace.progress.map((p) => /\| (\d+)%/.exec(p)?.[1]).filter(Boolean).map(Number);
  expect(new Set(percents).size).toBeGreaterThanOrEqual(2);
  expect(trace.epochsWhileRunning.some((e) => /^[1-9]\d* \| Epoch \d+: Training/.test(e))).toBe(true);
  // Plain words, no doubled brackets, and no "0%" that looks stuck while the model loads.
  expect(trace.progress.filter((p) => /\(.*\(/.test(p))).toEqual([]);
  expect(trace.progress.filter((p) => /backbone|features/i.test(p))).toEqual([]);
  expect(trace.progress.filter((p) => p.startsWith('Getting the model ready') && /\| \d+%/.test(p))).toEqual([]);

  await expect(page.getByRole('status').filter({ hasText: 'Training finished' })).toBeVisible();
  const live = page.locator('section[aria-labelledby="live-heading"]');
  await expect(live.locator('.stats .v').first()).toHaveText('3');
  await expect(live.locator('figure.chart canvas').first()).toBeVisible();
  await expect(page.getByRole('button', { name: 'Start training' })).toBeEnabled();
  await expect(page.getByRole('button', { name: 'Cancel training' })).toHaveCount(0);
  await shoot('06-train-done', info);
});

test('Results: accuracy, confusion matrix, and a cell opens its gallery', async ({}, info) => {
  await page.getByRole('status').getByRole('button', { name: 'See results' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Results' })).toBeVisible();
  await expect(page.getByTestId('val-accuracy')).toHaveText(/^\d+(\.\d)?%$/);
  const runs = page.getByRole('list', { name: 'Training runs' });
  await expect(runs.getByRole('listitem')).toHaveCount(1);
  await expect(runs).toContainText('Completed');

  const matrix = page.getByRole('table', { name: /Confusion matrix/ });
  await expect(matrix).toBeVisible();
  const labels = Object.keys(CLASSES);
  for (const l of labels) await expect(matrix.getByRole('rowheader', { name: l, exact: true })).toBeVisible();
  await expect(matrix.locator('button.cell')).toHaveCount(25);
  // Every validation image is counted once: the row totals add up to the run's validation images.
  const counts = await matrix.locator('button.cell').allTextContents();
  const total = counts.map((c) => Number(c.trim())).reduce((a, b) => a + b, 0);
  await expect(page.getByRole('region', { name: 'Run summary' })).toContainText(`${total} held back to check the model`);
  await expect(page.getByRole('heading', { name: 'Per class' })).toBeVisible();
  await expect(page.getByTestId('next-classify')).toBeVisible();
  await expect(page.getByTestId('next-export')).toBeVisible();
  await shoot('07-results', info);

  // A diagonal cell opens its images too (the run keeps its correct validation images).
  const diagonal = [0, 1, 2, 3, 4].map((i) => ({ i, n: Number(counts[i * 5 + i].trim()) })).find((d) => d.n > 0);
  if (diagonal) {
    await matrix.getByTestId(`cell-${diagonal.i}-${diagonal.i}`).click();
    const right = page.getByRole('dialog', { name: `${labels[diagonal.i]}: recognised correctly` });
    await expect(right.getByTestId('gallery-item')).toHaveCount(diagonal.n);
    await expect(right.getByTestId('gallery-item').first()).toContainText(`Predicted ${labels[diagonal.i]}`);
    await expect(right.getByTestId('gallery-item').first().locator('img')).toBeVisible({ timeout: 30_000 });
    await shoot('08b-results-diagonal', info, async () => {
      await expect(right.getByTestId('gallery-item').first().locator('img')).toBeVisible();
    });
    await right.getByRole('button', { name: 'Close' }).click();
    await expect(right).toBeHidden();
  }

  // A cell with mistakes (off the diagonal) lists its images with true and predicted labels.
  let target: { t: number; p: number; n: number } | null = null;
  for (let t = 0; t < 5 && !target; t++) {
    for (let p = 0; p < 5; p++) {
      const n = Number(counts[t * 5 + p].trim());
      if (t !== p && n > 0) {
        target = { t, p, n };
        break;
      }
    }
  }
  if (target) {
    const trueLabel = labels[target.t];
    const predicted = labels[target.p];
    await matrix.getByTestId(`cell-${target.t}-${target.p}`).click();
    const gallery = page.getByRole('dialog', { name: `${trueLabel} predicted as ${predicted}` });
    await expect(gallery).toBeVisible();
    await expect(gallery.getByTestId('gallery-summary')).toContainText(`of ${trueLabel}`);
    const items = gallery.getByTestId('gallery-item');
    await expect(items).toHaveCount(target.n);
    await expect(items.first()).toContainText(`True ${trueLabel}`);
    await expect(items.first()).toContainText(`Predicted ${predicted}`);
    await expect(items.first()).toContainText(/Confidence\s*\d+(\.\d)?%/);
    await expect(items.first().locator('img')).toBeVisible({ timeout: 30_000 });
    await shoot('08-results-gallery', info, async () => {
      await expect(items.first().locator('img')).toBeVisible();
    });
    await gallery.getByRole('button', { name: 'Close' }).click();
    await expect(gallery).toBeHidden();
  } else {
    // A perfect model: the diagonal cell's dialog says how many were right.
    await matrix.getByTestId('cell-0-0').click();
    const gallery = page.getByRole('dialog', { name: `${labels[0]}: recognised correctly` });
    await expect(gallery.getByTestId('gallery-summary')).toContainText('classified correctly');
    await shoot('08-results-gallery', info);
    await gallery.getByRole('button', { name: 'Close' }).click();
  }
});

test('a second run cancelled mid-way leaves the project intact', async ({}, info) => {
  test.setTimeout(4 * 60_000);
  await go('Train');
  await configureRun({ mode: 'full', epochs: 30, inputSize: 32, batchSize: 16 });
  await page.getByRole('button', { name: 'Start training' }).click();
  const live = page.locator('section[aria-labelledby="live-heading"]');
  // Mid-way: the first epoch is done and the second is training, far from the 30 asked for.
  await expect(live.getByRole('progressbar')).toHaveAttribute('aria-label', /^(Training|Training the network) — epoch 2 of 30$/, { timeout: 120_000 });
  // The action bar keeps Cancel in view during the run.
  await expect(page.getByRole('button', { name: 'Cancel training' })).toBeInViewport();
  await expect(live.getByRole('progressbar')).toHaveAttribute('aria-valuetext', /batch \d+ of \d+/);
  await expect(live.locator('.stats .v').first()).toHaveText('1');
  await page.getByRole('button', { name: 'Cancel training' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Training was cancelled' })).toBeVisible({ timeout: 90_000 });
  await expect(page.locator('#live-heading')).toHaveText('Last run');
  await expect(live.getByRole('progressbar')).toHaveCount(0);
  const epochsDone = Number(await live.locator('.stats .v').first().textContent());
  expect(epochsDone).toBeGreaterThanOrEqual(1);
  expect(epochsDone).toBeLessThan(30);
  await expect(page.getByRole('button', { name: 'Start training' })).toBeEnabled();
  await shoot('09-train-cancelled', info);

  await go('Results');
  const runs = page.getByRole('list', { name: 'Training runs' });
  await expect(runs.getByRole('listitem')).toHaveCount(2);
  await expect(runs.getByRole('listitem').filter({ hasText: 'Cancelled' })).toHaveCount(1);
  await expect(runs.getByRole('listitem').filter({ hasText: 'Completed' })).toHaveCount(1);
  await runs.getByRole('button').filter({ hasText: 'Cancelled' }).click();
  await expect(page.getByRole('region', { name: 'Run summary' })).toContainText('cancelled');
  await expect(page.getByRole('button', { name: 'Resume this run' })).toBeVisible();
  await shoot('10-results-cancelled', info);

  await go('Data');
  const classList = page.getByRole('list', { name: 'Classes' });
  await expect(classList.getByRole('listitem')).toHaveCount(5);
  for (const [name, count] of Object.entries(CLASSES)) {
    await expect(classList.locator('button.select', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) }).locator('.count')).toHaveText(String(count));
  }
  await expect(page.locator('.screen-head p')).toContainText(`${TOTAL} images in 5 classes`);
});

test('Classify images: a photo gets a top label, one of the five classes', async ({}, info) => {
  await go('Classify');
  await expect(page.getByText('There is no finished training run yet')).toBeHidden();
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Classify images' }).click();
  await (await chooser).setFiles(PROBE);
  const card = page.getByTestId('classify-result');
  await expect(card).toHaveCount(1, { timeout: 60_000 });
  await expect(card).toContainText('blackbird.png');
  const top = card.getByRole('list', { name: 'Top labels' }).getByRole('listitem');
  await expect(top).toHaveCount(3);
  const shown = await top.evaluateAll((items) =>
    items.map((li) => ({ label: li.querySelector('.label')!.textContent!.trim(), percent: li.querySelector('.p')!.textContent!.trim() })),
  );
  const { label, percent } = shown[0];
  expect(Object.keys(CLASSES)).toContain(label);
  for (const s of shown) expect(s.percent).toMatch(/^\d+(\.\d)?%$/);
  await expect(card.locator('img')).toBeVisible();
  await expect(page.getByTestId('classify-count')).toHaveText('Showing 1 of 1');
  uiTop = shown;
  info.annotations.push({ type: 'classify', description: `${path.basename(PROBE)} → ${label} (${percent})` });
  await shoot('11-classify', info);

  // A folder of 26 images (on the server's disk): counted as 26, results shown as they come.
  await page.evaluate(() => {
    const w = window as unknown as { __classifyTrace?: string[]; __classifyTimer?: number };
    const trace: string[] = [];
    w.__classifyTrace = trace;
    w.__classifyTimer = window.setInterval(() => {
      const box = document.querySelector('[data-testid="classify-progress"]');
      if (!box) return;
      const shown = document.querySelectorAll('[data-testid="classify-result"]').length;
      const text = `${box.querySelector('.label')?.textContent ?? ''} | ${box.querySelector('.detail')?.textContent ?? ''} | ${shown}`;
      if (trace.at(-1) !== text) trace.push(text);
    }, 20);
  });
  await page.getByRole('button', { name: 'Classify a folder…' }).click();
  const picker = page.getByRole('dialog', { name: 'Classify the images in a folder' });
  await picker.getByLabel('Folder path').fill(path.join(PHOTOS, 'fruit'));
  // Typed, not opened with Go: "Select" takes the typed folder, never the listed parent.
  await picker.getByRole('button', { name: 'Select the typed folder' }).click();
  await expect(page.getByTestId('classify-count')).toHaveText(`Showing ${CLASSES.fruit + 1} of ${CLASSES.fruit + 1}`, { timeout: 60_000 });
  const classifyTrace = await page.evaluate(() => {
    const w = window as unknown as { __classifyTrace: string[]; __classifyTimer?: number };
    clearInterval(w.__classifyTimer);
    return w.__classifyTrace;
  });
  console.log(`classify a folder of ${CLASSES.fruit}:\n  ${classifyTrace.join('\n  ')}`);
  expect(classifyTrace.filter((t) => t.startsWith('Classifying')).every((t) => t.startsWith(`Classifying ${CLASSES.fruit} images…`))).toBe(true);
  expect(classifyTrace.some((t) => t.startsWith('Classifying 1 image'))).toBe(false);
  await shoot('11b-classify-folder', info);
});

test('Export: the files are written and load in plain TF.js with the same top label', async ({}, info) => {
  test.setTimeout(3 * 60_000);
  expect(uiTop).not.toBeNull();
  await go('Export');
  // A folder of other files: refused, with advice that fits (choose a new or empty folder), on this screen only.
  await page.getByLabel('Output folder').fill(PHOTOS);
  await page.getByRole('button', { name: 'Export model' }).click();
  const banner = page.getByTestId('error-banner');
  await expect(banner).toContainText('Couldn’t export the model');
  await expect(banner).toContainText('Choose a new or empty folder');
  await expect(banner).not.toContainText(/rescan|restart/);
  await shoot('12a-export-not-empty', info);
  await go('Data');
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await go('Export');
  await expect(page.getByTestId('error-banner')).toHaveCount(1);
  await banner.getByRole('button', { name: /^Dismiss/ }).click();
  await page.getByLabel('Output folder').fill(exportDir);
  await shoot('12-export-setup', info);
  await page.getByRole('button', { name: 'Export model' }).click();
  const result = page.getByTestId('export-result');
  await expect(result).toBeVisible({ timeout: 120_000 });
  await expect(result.getByRole('heading', { name: /Exported to/ })).toContainText(exportDir);
  const listed = (await result.locator('tbody tr td.mono').allTextContents()).map((s) => s.trim());
  for (const f of ['model.json', 'refit.json']) expect(listed).toContain(f);
  expect(listed.some((f) => /^group1-shard\d+of\d+\.bin$/.test(f))).toBe(true);
  await expect(result.locator('pre')).not.toBeEmpty();
  await shoot('13-export-done', info);

  // Every listed file is on disk.
  const onDisk = await readdir(exportDir);
  for (const f of listed) expect(onDisk).toContain(f);

  // Node: plain @tensorflow/tfjs, the folder's own model.json + shards, preprocessing as refit.json says.
  const manifest = JSON.parse(await readFile(path.join(exportDir, 'refit.json'), 'utf8')) as {
    labels: string[];
    inputSize: number;
    preprocessing: Preprocessing & { channelOrder: string };
    input: { shape: [null, number, number, 3] };
  };
  expect([...manifest.labels].sort()).toEqual(Object.keys(CLASSES));
  const modelJson = JSON.parse(await readFile(path.join(exportDir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const shards = await Promise.all(modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => readFile(path.join(exportDir, p))));
  const weightData = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
  let offset = 0;
  for (const s of shards) {
    weightData.set(s, offset);
    offset += s.byteLength;
  }
  await tf.ready();
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData: weightData.buffer }));
  try {
    const size = manifest.inputSize;
    expect(model.inputs[0].shape).toEqual([null, size, size, 3]);
    const pixels = await decodeImage(PROBE, size);
    const probs = tf.tidy(() => model.predict(preprocess(tf.tensor4d(pixels, [1, size, size, 3]), manifest.preprocessing)) as tf.Tensor);
    const values = Array.from(await probs.data());
    probs.dispose();
    const ranked = values.map((p, i) => ({ label: manifest.labels[i], percent: p * 100 })).sort((a, b) => b.percent - a.percent);
    const ui = uiTop!;
    const summary = `Node tfjs (${tf.getBackend()}): ${ranked.slice(0, 3).map((r) => `${r.label} ${r.percent.toFixed(2)}%`).join(', ')}; UI: ${ui.map((r) => `${r.label} ${r.percent}`).join(', ')}`;
    console.log(summary);
    info.annotations.push({ type: 'export', description: summary });
    // The same top label, and the same top-3 probabilities as the UI showed (to its rounding).
    expect(ranked[0].label).toBe(ui[0].label);
    for (const shownRow of ui) {
      const mine = ranked.find((r) => r.label === shownRow.label)!;
      expect(Math.abs(mine.percent - Number.parseFloat(shownRow.percent)), shownRow.label).toBeLessThan(0.11);
    }
  } finally {
    model.dispose();
  }
});

test('screens in both themes, and no console errors', async ({}, info) => {
  await go('Results');
  await expect(page.getByRole('table', { name: /Confusion matrix/ })).toBeVisible();
  await go('Data');
  await expect(page.getByRole('list', { name: 'Classes' }).getByRole('listitem')).toHaveCount(5);
  // The theme toggle cycles system → light → dark → system and the page follows.
  const toggle = page.getByRole('button', { name: /^Theme: / });
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.waitForTimeout(300);
  const file = path.join(SCREENSHOTS, '14-data-dark-toggle.png');
  await page.screenshot({ path: file, animations: 'disabled' });
  await info.attach('data-dark-toggle', { path: file, contentType: 'image/png' });
  await toggle.click();
  await expect(toggle).toHaveAccessibleName(/Theme: system/);

  expect(consoleErrors, consoleErrors.join('\n')).toEqual([]);
});
