import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import ResultsScreen from '../../renderer/src/screens/ResultsScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { cellSelection } from '../../renderer/src/state/results.svelte';
import type { RunRecord } from '../../renderer/src/types';
import { appInfo, fakeApi, settle, target } from './fake-api';

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
