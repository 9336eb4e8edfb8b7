import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import ResultsScreen from '../../renderer/src/screens/ResultsScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { cellSelection, classChanges } from '../../renderer/src/state/results.svelte';
import type { DatasetView, RunRecord, RunSummary } from '../../renderer/src/types';
import { appInfo, button, fakeApi, PROJECT, settle, target } from './fake-api';
import { summarizeRun } from '../../main/engine/service/run-summary';

const labels = ['birds', 'fruit', 'flowers'];
const record: RunRecord = {
  format: 'refit-run',
  version: 1,
  id: 'run-2',
  created: '2025-01-02T10:00:00.000Z',
  updated: '2025-01-02T10:05:00.000Z',
  status: 'completed',
  config: {
    backbone: 'resnet50',
    weights: 'imagenet',
    mode: 'head',
    inputSize: 224,
    learningRate: 0.001,
    head: { kind: 'linear' },
    epochs: 5,
    batchSize: 16,
    valSplit: 0.2,
    seed: 42,
    augment: true,
    patience: 5,
    classWeights: true,
  },
  labels,
  preprocessing: { mode: 'caffe' } as unknown as RunRecord['preprocessing'],
  datasetFingerprint: 'abc',
  trainImages: 80,
  valImages: 21,
  history: [1, 2, 3].map((epoch) => ({ epoch, phase: 'train' as const, loss: 1 / epoch, accuracy: 0.6 + epoch / 10, valLoss: 1.2 / epoch, valAccuracy: 0.55 + epoch / 10, learningRate: 0.001, seconds: 3 })),
  bestEpoch: 3,
  lastEpoch: 3,
  metrics: {
    valAccuracy: 18 / 21,
    valLoss: 0.4,
    bestEpoch: 3,
    labels,
    confusion: [
      [5, 1, 0],
      [2, 6, 0],
      [0, 0, 7],
    ],
    perClass: [
      { name: 'birds', precision: 5 / 7, recall: 5 / 6, f1: 0.769, support: 6 },
      { name: 'fruit', precision: 6 / 7, recall: 6 / 8, f1: 0.8, support: 8 },
      { name: 'flowers', precision: 1, recall: 1, f1: 1, support: 7 },
    ],
    misclassified: [
      { file: '/data/fruit/lemon.png', trueLabel: 'fruit', predictedLabel: 'birds', confidence: 0.81 },
      { file: '/data/birds/owl.png', trueLabel: 'birds', predictedLabel: 'fruit', confidence: 0.66 },
      { file: '/data/fruit/pear.png', trueLabel: 'fruit', predictedLabel: 'birds', confidence: 0.52 },
    ],
  },
  featureKey: 'k',
};

function resultsApi() {
  return fakeApi({
    'runs.list': () => [
      { id: 'run-1', created: '2025-01-01T10:00:00.000Z', status: 'cancelled', backbone: 'resnet18', mode: 'head', valAccuracy: null, epochs: 1 },
      { id: 'run-2', created: record.created, status: 'completed', backbone: 'resnet50', mode: 'head', valAccuracy: 18 / 21, epochs: 3 },
    ],
    'runs.get': ({ runId }) => {
      if (runId !== 'run-2') throw new Error(`no run ${runId}`);
      return record;
    },
    'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
  });
}

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

describe('Results screen', () => {
  it('selects a confusion-matrix cell: the misclassified images of that cell, or the count of correct ones', () => {
    expect(cellSelection(record, 1, 0)?.images.map((i) => i.file)).toEqual(['/data/fruit/lemon.png', '/data/fruit/pear.png']);
    expect(cellSelection(record, 1, 0)?.count).toBe(2);
    expect(cellSelection(record, 2, 2)).toMatchObject({ count: 7, images: [] });
  });

  it('shows the accuracy, the confusion matrix with its counts, and opens a cell’s gallery', async () => {
    const api = resultsApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ResultsScreen, { target: el, props: { app } });
    await settle();

    // The newest run is selected; its summary and counts are shown.
    expect(api.callsOf('runs.get')).toEqual([{ runId: 'run-2' }]);
    expect(el.querySelector('[data-testid="val-accuracy"]')!.textContent).toBe('85.7%');
    const counts = record.metrics!.confusion;
    for (let t = 0; t < 3; t++) for (let p = 0; p < 3; p++) expect(el.querySelector(`[data-testid="cell-${t}-${p}"]`)!.textContent!.trim()).toBe(String(counts[t][p]));
    expect(el.querySelector('[data-testid="cell-1-0"]')!.getAttribute('aria-label')).toBe('2 fruit images predicted as birds');
    // Per-class table.
    const rows = Array.from(el.querySelectorAll('table.data tbody tr')).map((r) => Array.from(r.children).map((c) => c.textContent!.trim()).join(' '));
    expect(rows).toEqual(['birds 71.4% 83.3% 76.9% 6', 'fruit 85.7% 75.0% 80.0% 8', 'flowers 100.0% 100.0% 100.0% 7']);

    // Off-diagonal cell → gallery of exactly those images, with labels and confidence.
    el.querySelector<HTMLButtonElement>('[data-testid="cell-1-0"]')!.click();
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog).not.toBeNull();
    expect(dialog.textContent).toContain('fruit predicted as birds');
    const items = Array.from(dialog.querySelectorAll('[data-testid="gallery-item"]'));
    expect(items.map((i) => i.querySelector('.name')!.textContent)).toEqual(['lemon.png', 'pear.png']);
    expect(items[0].textContent).toContain('81.0%');
    expect(items[0].textContent).toMatch(/True\s*fruit/);
    expect(items[0].textContent).toMatch(/Predicted\s*birds/);
    expect(api.callsOf('dataset.thumbnail').map((p) => p.file)).toEqual(['/data/fruit/lemon.png', '/data/fruit/pear.png']);
    expect(dialog.querySelectorAll('img').length).toBe(2);

    // Escape closes it.
    dialog.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await settle(2);
    expect(document.querySelector('[role="dialog"]')).toBeNull();

    // A diagonal cell says how many were right.
    el.querySelector<HTMLButtonElement>('[data-testid="cell-2-2"]')!.click();
    await settle(2);
    expect(document.querySelector('[data-testid="gallery-summary"]')!.textContent).toMatch(/7 validation images of flowers were classified correctly/);
  });

  it('says so when there are no runs yet', async () => {
    const api = fakeApi({ 'runs.list': () => [] });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ResultsScreen, { target: el, props: { app } });
    await settle();
    expect(el.textContent).toContain('No training runs yet');
  });
});

/** A copy of the fixture run with other fields (each its own arrays, so tests cannot share state). */
function runRecord(overrides: Partial<RunRecord>): RunRecord {
  return { ...structuredClone(record), ...overrides };
}

const summaryOf = (r: RunRecord): RunSummary => summarizeRun(r);

/** The project's classes as the Data screen holds them (name → usable images). */
function dataset(classes: Record<string, number>): DatasetView {
  const list = Object.entries(classes).map(([name, images]) => ({ name, images, folders: [`/data/${name}`] }));
  return { project: { ...PROJECT, classes: list }, classes: list, problems: [], warnings: [], totalImages: list.reduce((n, c) => n + c.images, 0) };
}

/** An api serving `runs` (newest first in the list) that starts every training as run-9. */
function runsApi(runs: RunRecord[]) {
  return fakeApi({
    'runs.list': () => runs.map(summaryOf),
    'runs.get': ({ runId }) => {
      const found = runs.find((r) => r.id === runId);
      if (!found) throw new Error(`no run ${runId}`);
      return structuredClone(found);
    },
    'training.start': () => ({ runId: 'run-9' }),
  });
}

async function mountResults(runs: RunRecord[], classes?: Record<string, number>) {
  const api = runsApi(runs);
  const app = new AppState(api);
  app.info = appInfo('wasm');
  if (classes) app.dataset = dataset(classes);
  const el = target();
  component = mount(ResultsScreen, { target: el, props: { app } });
  await settle();
  return { api, app, el };
}

async function selectRun(app: AppState, runId: string) {
  await app.results.select(runId);
  await settle(2);
}

describe('Continue training', () => {
  const completed = runRecord({ id: 'run-completed', created: '2025-01-05T10:00:00.000Z', status: 'completed', bestEpoch: 3 });
  const early = runRecord({ id: 'run-early', created: '2025-01-04T10:00:00.000Z', status: 'early-stopped', bestEpoch: 2, lastEpoch: 4 });
  const noCheckpoint = runRecord({ id: 'run-nockpt', created: '2025-01-03T10:00:00.000Z', status: 'completed', bestEpoch: null, metrics: null });
  const cancelled = runRecord({ id: 'run-cancelled', created: '2025-01-02T10:00:00.000Z', status: 'cancelled', bestEpoch: 1, lastEpoch: 1, metrics: null });
  const failed = runRecord({ id: 'run-failed', created: '2025-01-01T10:00:00.000Z', status: 'failed', error: 'out of memory', bestEpoch: 1, lastEpoch: 2, metrics: null });

  it('offers "Continue training" only for completed or early-stopped runs that have a best checkpoint', async () => {
    const { app, el } = await mountResults([completed, early, noCheckpoint, cancelled, failed]);
    const shown: Record<string, { continue: boolean; resume: boolean }> = {};
    for (const r of [completed, early, noCheckpoint, cancelled, failed]) {
      await selectRun(app, r.id);
      expect(app.results.record?.id).toBe(r.id);
      shown[r.id] = { continue: !!button(el, 'Continue training'), resume: !!button(el, 'Resume this run') };
    }
    expect(shown).toEqual({
      'run-completed': { continue: true, resume: false },
      'run-early': { continue: true, resume: false },
      'run-nockpt': { continue: false, resume: false },
      'run-cancelled': { continue: false, resume: true },
      'run-failed': { continue: false, resume: true },
    });
    // The button explains what it does.
    await selectRun(app, 'run-early');
    const help = el.querySelector(`#${button(el, 'Continue training')!.getAttribute('aria-describedby')}`)!;
    expect(help.textContent).toContain('new run from this model’s best weights on the project’s current images');
  });

  it('starts a new run with the run’s config and parentRunId, then shows the Train screen', async () => {
    const { api, app, el } = await mountResults([completed, early]);
    await selectRun(app, 'run-early');
    app.training.history = [early.history[0]]; // left over from an earlier run: a continued run starts afresh
    const cont = button(el, 'Continue training')!;
    expect(cont.disabled).toBe(false);
    cont.click();
    await settle();

    expect(api.callsOf('training.start')).toEqual([{ config: early.config, parentRunId: 'run-early' }]);
    expect(api.callsOf('training.start')[0]).not.toHaveProperty('resumeRunId');
    expect(app.screen).toBe('train');
    expect(app.training.runId).toBe('run-9');
    expect(app.training.parentRunId).toBe('run-early');
    // The chart's x axis covers the whole planned run from the start (fine-tune: head + backbone epochs).
    expect(app.training.plannedEpochs).toBe(early.config.mode === 'finetune' ? 2 * early.config.epochs : early.config.epochs);
    expect(app.training.phase).toBe('running');
    expect(app.training.history).toEqual([]);
    expect(app.errors).toEqual([]);
  });

  it('reports a refused continue and stays on Results', async () => {
    const { api, app, el } = await mountResults([completed]);
    api.handlers['training.start'] = () => {
      throw new Error('continue: run run-completed trained resnet50 at 224px; the backbone and input size must stay the same');
    };
    button(el, 'Continue training')!.click();
    await settle();
    expect(api.callsOf('training.start')).toHaveLength(1);
    expect(app.errors.map((e) => e.title)).toEqual(['Couldn’t continue training']);
    expect(app.screen).toBe('data'); // the screen was never switched (the test mounts Results directly)
    expect(app.training.phase).toBe('idle');
  });

  it('is disabled while a training runs, and enabled again when it ends', async () => {
    const { api, app, el } = await mountResults([completed]);
    expect(button(el, 'Continue training')!.disabled).toBe(false);
    app.training.phase = 'running';
    await settle(2);
    const cont = button(el, 'Continue training')!;
    expect(cont.disabled).toBe(true);
    cont.click();
    await app.results.continueRun(completed); // the state refuses too
    await settle();
    expect(api.callsOf('training.start')).toEqual([]);
    app.training.phase = 'idle';
    await settle(2);
    expect(button(el, 'Continue training')!.disabled).toBe(false);
  });

  it('names the classes that are new in the project and those that are gone', async () => {
    // The run trained birds, fruit, flowers. Now: fruit and flowers remain, insects and cars are new,
    // birds was removed and the trees folder has no usable images (so neither counts as a class).
    const { app, el } = await mountResults([completed], { fruit: 10, insects: 8, flowers: 12, cars: 5, trees: 0 });
    expect(el.querySelector('[data-testid="continue-added"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('New since this run: cars, insects — they get new outputs.');
    expect(el.querySelector('[data-testid="continue-removed"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe('Gone from the project: birds — dropped from the continued run.');

    // The same classes as the run: no note.
    app.dataset = dataset({ birds: 4, fruit: 10, flowers: 12 });
    await settle(2);
    expect(button(el, 'Continue training')).toBeDefined();
    expect(el.querySelector('[data-testid="continue-added"]')).toBeNull();
    expect(el.querySelector('[data-testid="continue-removed"]')).toBeNull();

    // Only a new one.
    app.dataset = dataset({ birds: 4, fruit: 10, flowers: 12, moths: 3 });
    await settle(2);
    expect(el.querySelector('[data-testid="continue-added"]')!.textContent).toMatch(/moths — it gets a new output/);
    expect(el.querySelector('[data-testid="continue-removed"]')).toBeNull();
  });

  it('compares classes only once the dataset is known', () => {
    expect(classChanges(labels, null)).toBeNull();
    expect(classChanges(labels, dataset({ flowers: 1, birds: 2, fruit: 3 }))).toEqual({ added: [], removed: [] });
    expect(classChanges(labels, dataset({ zebra: 1, apple: 2, fruit: 3 }))).toEqual({ added: ['apple', 'zebra'], removed: ['birds', 'flowers'] });
  });
});

describe('Continued runs', () => {
  const parent = runRecord({ id: 'run-parent', created: '2025-01-05T10:00:00.000Z', status: 'completed', bestEpoch: 3 });
  const child = runRecord({ id: 'run-child', created: '2025-01-06T10:00:00.000Z', status: 'completed', bestEpoch: 2, parent: 'run-parent' });
  const orphan = runRecord({ id: 'run-orphan', created: '2025-01-07T10:00:00.000Z', status: 'completed', parent: 'run-deleted' });

  const fact = (el: HTMLElement) => el.querySelector<HTMLElement>('[data-testid="continued-from"]');

  it('names the run a continued run started from, and selects it on click', async () => {
    const { api, app, el } = await mountResults([child, parent]);
    expect(app.results.record?.id).toBe('run-child');
    const f = fact(el)!;
    expect(f).not.toBeNull();
    expect(f.querySelector('dt')!.textContent).toBe('Continued from');
    // Named by its facts (the id is in the link's title).
    expect(f.querySelector('dd')!.textContent!.trim()).toBe('ResNet-50 · quick · 86%');

    const link = button(f, 'ResNet-50 · quick · 86%')!;
    expect(link).toBeDefined();
    expect(link.title).toContain('Show run run-parent');
    link.click();
    await settle();
    expect(app.results.selectedId).toBe('run-parent');
    expect(app.results.record?.id).toBe('run-parent');
    expect(api.callsOf('runs.get').at(-1)).toEqual({ runId: 'run-parent' });
    // The run list (newest first: child, parent) marks it, and a run that continued nothing has no such fact.
    const items = Array.from(el.querySelectorAll('ul.runs button'));
    expect(items.map((b) => b.getAttribute('aria-current'))).toEqual([null, 'true']);
    expect(fact(el)).toBeNull();
    expect(el.textContent).not.toContain('Continued from');
  });

  it('shows the parent’s id without a link when that run is no longer listed', async () => {
    const { app, el } = await mountResults([orphan, parent]);
    expect(app.results.record?.id).toBe('run-orphan');
    const f = fact(el)!;
    expect(f.querySelector('dd')!.textContent!.trim()).toBe('run-deleted');
    expect(f.querySelector('button')).toBeNull();
  });
});
