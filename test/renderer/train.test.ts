import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import TrainScreen from '../../renderer/src/screens/TrainScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { toTrainConfig, defaultSettings } from '../../renderer/src/state/training.svelte';
import type { DatasetView, ModelCard } from '../../renderer/src/types';
import { appInfo, button, fakeApi, PROJECT, settle, target } from './fake-api';

const MODELS: ModelCard[] = [
  { id: 'resnet18', name: 'ResNet-18', description: 'Small and fast.', params: 11_689_512, inputSize: 224, featureDim: 512, flops: 3.6e9, weights: [], estimates: { head: 40, finetune: 300, full: 5400 } },
  { id: 'resnet50', name: 'ResNet-50', description: 'The classic all-rounder.', params: 25_557_032, inputSize: 224, featureDim: 2048, flops: 7.7e9, weights: ['imagenet'], estimates: { head: 95, finetune: 900, full: 20000 } },
];

function dataset(counts: number[]): DatasetView {
  const classes = counts.map((images, i) => ({ name: `class${i}`, images, folders: [`/data/class${i}`] }));
  return { project: { ...PROJECT, classes }, classes, problems: [], warnings: [], totalImages: counts.reduce((a, b) => a + b, 0) };
}

function trainApi() {
  return fakeApi({
    'models.list': () => MODELS,
    'training.status': () => ({ runId: null, state: 'idle', last: null }),
    'training.start': () => ({ runId: 'run-7' }),
    'training.cancel': () => ({ cancelled: true }),
    'runs.list': () => [],
  });
}

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

describe('Train screen', () => {
  it('disables "Start training" without a dataset and says why', async () => {
    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([]);
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    const start = button(el, 'Start training')!;
    expect(start).toBeDefined();
    expect(start.disabled).toBe(true);
    expect(el.querySelector('#train-blocker')!.textContent).toContain('Add images first');
    expect(button(el, 'Cancel training')!.disabled).toBe(true);

    // One class is not enough either.
    app.dataset = dataset([12]);
    await settle(2);
    expect(button(el, 'Start training')!.disabled).toBe(true);
    expect(el.querySelector('#train-blocker')!.textContent).toContain('at least two classes');
  });

  it('shows backbones and modes, starts, and follows progress, ETA and epochs from events', async () => {
    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([30, 20]);
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();

    // Backbone cards: the one with ImageNet weights is preselected.
    const r50 = el.querySelector<HTMLElement>('[data-testid="backbone-resnet50"]')!;
    expect(r50.textContent).toContain('ImageNet weights');
    expect(r50.textContent).toContain('25.6 M');
    expect(r50.textContent).toContain('224×224');
    expect(r50.textContent).toContain('about 2 min');
    expect(r50.querySelector('input')!.checked).toBe(true);
    expect(el.querySelector('[data-testid="backbone-resnet18"]')!.textContent).toContain('Random start');
    // On a CPU backend, full training says it needs a GPU.
    expect(el.querySelector('[data-testid="mode-full"]')!.textContent).toContain('needs a GPU to be practical');

    const start = button(el, 'Start training')!;
    expect(start.disabled).toBe(false);
    start.click();
    await settle();
    const [params] = api.callsOf('training.start');
    expect(params.config).toMatchObject({ backbone: 'resnet50', weights: 'imagenet', mode: 'head', epochs: 10, batchSize: 16, valSplit: 0.2, augment: true });
    expect(button(el, 'Start training')!.disabled).toBe(true);
    expect(button(el, 'Cancel training')!.disabled).toBe(false);

    // Progress from the engine.
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'train', fraction: 0.4, epoch: 2, epochs: 10, etaSeconds: 95, imagesPerSec: 12.3, batch: 3, batches: 8 } });
    await settle(2);
    const bar = el.querySelector<HTMLElement>('[role="progressbar"]')!;
    expect(bar.getAttribute('aria-valuenow')).toBe('40');
    expect(el.textContent).toContain('Training — epoch 2 of 10');
    expect(el.textContent).toContain('ETA 1 min 35 s');
    expect(el.textContent).toContain('12 images/s');

    // Events of another run are ignored.
    api.emit('training.event', { runId: 'other', event: { type: 'progress', phase: 'extract', fraction: 0.9 } });
    await settle(2);
    expect(bar.getAttribute('aria-valuenow')).toBe('40');

    // Epochs feed the stats (and the charts).
    for (const epoch of [1, 2]) {
      api.emit('training.event', {
        runId: 'run-7',
        event: { type: 'epoch', record: { epoch, phase: 'train', loss: 1 / epoch, accuracy: 0.5 + epoch / 10, valLoss: 1.1 / epoch, valAccuracy: 0.6 + epoch / 10, learningRate: 0.001, seconds: 4 } },
      });
    }
    await settle(2);
    expect(app.training.history).toHaveLength(2);
    expect(el.textContent).toContain('80.0%');
    expect(el.textContent).toMatch(/Epoch 2: Training 0\.500, Validation 0\.550/);

    // Cancel → engine asked; the end event brings the screen back to idle.
    button(el, 'Cancel training')!.click();
    await settle(2);
    expect(api.callsOf('training.cancel')).toHaveLength(1);
    api.emit('training.ended', { runId: 'run-7', status: 'cancelled' });
    await settle(2);
    expect(button(el, 'Start training')!.disabled).toBe(false);
    expect(app.notices.at(-1)!.text).toContain('cancelled');
  });

  it('builds the contract’s config from the advanced settings', () => {
    const s = { ...defaultSettings(), backbone: 'resnet18', mode: 'full' as const, learningRate: 0.0005, inputSize: 160, head: 'mlp' as const, epochs: 3.4 };
    expect(toTrainConfig(s, MODELS[0])).toEqual({
      backbone: 'resnet18',
      weights: 'none',
      mode: 'full',
      head: { kind: 'mlp', hidden: 256, dropout: 0.2 },
      epochs: 3,
      batchSize: 16,
      valSplit: 0.2,
      seed: 42,
      augment: true,
      patience: 5,
      classWeights: true,
      learningRate: 0.0005,
      inputSize: 160,
    });
  });
});
