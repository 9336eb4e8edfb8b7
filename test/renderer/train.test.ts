import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import TrainScreen from '../../renderer/src/screens/TrainScreen.svelte';
import TrainingCurves from '../../renderer/src/components/TrainingCurves.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { toTrainConfig, defaultSettings, epochEtaSeconds, firstPointNote, progressLabel } from '../../renderer/src/state/training.svelte';
import { plannedEpochs } from '../../main/api/train-config';
import type { DatasetView, EpochRecord, ModelCard, ProgressEvent } from '../../renderer/src/types';
import { appInfo, button, fakeApi, PROJECT, settle, target } from './fake-api';

const MODELS: ModelCard[] = [
  { id: 'resnet18', name: 'ResNet-18', description: 'Small and fast.', params: 11_689_512, inputSize: 224, featureDim: 512, flops: 3.6e9, weights: [], estimates: { head: 40, finetune: 300, full: 5400 }, memory: null },
  { id: 'resnet50', name: 'ResNet-50', description: 'The classic all-rounder.', params: 25_557_032, inputSize: 224, featureDim: 2048, flops: 7.7e9, weights: ['imagenet'], estimates: { head: 95, finetune: 900, full: 20000 }, memory: null },
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
let restoreCanvas: (() => void) | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  restoreCanvas?.();
  restoreCanvas = null;
  document.body.innerHTML = '';
});

/**
 * happy-dom has no 2D canvas, so the charts fall back to a text summary. For the tests that look at
 * the drawn axes, a recording stand-in context lets uPlot run: every canvas's fillText calls (tick
 * values and axis labels) are kept, per canvas.
 */
function stubCanvas(): Map<HTMLCanvasElement, string[]> {
  const drawn = new Map<HTMLCanvasElement, string[]>();
  const proto = HTMLCanvasElement.prototype as unknown as { getContext: unknown };
  const original = proto.getContext;
  const noop = () => undefined;
  proto.getContext = function (this: HTMLCanvasElement) {
    const texts = drawn.get(this) ?? [];
    drawn.set(this, texts);
    const state: Record<string | symbol, unknown> = { canvas: this };
    return new Proxy(state, {
      get(target, prop) {
        if (prop in target) return target[prop];
        if (prop === 'fillText') return (text: unknown) => texts.push(String(text));
        if (prop === 'measureText') return (text: string) => ({ width: text.length * 6, actualBoundingBoxAscent: 8, actualBoundingBoxDescent: 2 });
        return noop;
      },
      set(target, prop, value) {
        target[prop] = value;
        return true;
      },
    });
  };
  const g = globalThis as { Path2D?: unknown };
  const hadPath2D = 'Path2D' in g;
  const originalPath2D = g.Path2D;
  if (!hadPath2D) {
    g.Path2D = function Path2D() {
      return new Proxy({}, { get: () => noop });
    };
  }
  restoreCanvas = () => {
    proto.getContext = original;
    if (!hadPath2D) delete g.Path2D;
    else g.Path2D = originalPath2D;
  };
  return drawn;
}

/** What uPlot drew as text (tick values, axis label) on the canvas of the chart titled `title`. */
function drawnText(root: ParentNode, drawn: Map<HTMLCanvasElement, string[]>, title: string): string[] {
  const figure = Array.from(root.querySelectorAll('figure')).find((f) => f.querySelector('figcaption')?.textContent === title);
  const canvas = figure?.querySelector('.uplot canvas') as HTMLCanvasElement | null;
  return canvas ? (drawn.get(canvas) ?? []) : [];
}

function placeholders(root: ParentNode): string[] {
  return Array.from(root.querySelectorAll('[data-testid="chart-placeholder"]')).map((p) => p.textContent!.trim());
}

const epochRecord = (epoch: number): EpochRecord => ({ epoch, phase: 'train', loss: 1 / epoch, accuracy: 0.5 + epoch / 10, valLoss: 1.1 / epoch, valAccuracy: 0.6 + epoch / 10, learningRate: 0.001, seconds: 4 });

describe('Train screen', () => {
  it('names the run a continued run starts from, and not for a fresh run', async () => {
    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([30, 20]);
    app.training.runId = 'run-8';
    app.training.phase = 'running';
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelector('[data-testid="continuing-from"]')).toBeNull();
    app.training.parentRunId = 'run-3';
    await settle();
    expect(el.querySelector('[data-testid="continuing-from"]')!.textContent).toBe('Continuing from run run-3');
    app.training.reset();
    await settle();
    expect(el.querySelector('[data-testid="continuing-from"]')).toBeNull();
  });

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
    // No run yet: nothing to cancel, so no Cancel button.
    expect(button(el, 'Cancel training')).toBeUndefined();
    // Start lives in the action bar that stays in view below the settings.
    expect(el.querySelector('[data-testid="train-actions"]')!.contains(start)).toBe(true);

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
    // Random-start networks wait behind "Show all", so a newcomer sees the pretrained ones first.
    expect(el.querySelector('[data-testid="backbone-resnet18"]')).toBeNull();
    const showAll = el.querySelector<HTMLButtonElement>('[data-testid="show-all-backbones"]')!;
    expect(showAll.textContent).toMatch(/Show all \d+ \(\d+ more start from random weights\)/);
    showAll.click();
    await settle();
    expect(showAll.textContent).toContain('Show only pretrained networks');
    // 40 s estimated: not promised as "under a minute" (the estimates can be off by a factor of two).
    expect(el.querySelector('[data-testid="backbone-resnet18"]')!.textContent).toContain('about 1 min');
    expect(el.textContent).not.toContain('under a minute');
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
    expect(el.textContent).toMatch(/Epoch 2: Training 0\.500, Held back 0\.550/);

    // Cancel → engine asked; the end event brings the screen back to idle.
    button(el, 'Cancel training')!.click();
    await settle(2);
    expect(api.callsOf('training.cancel')).toHaveLength(1);
    api.emit('training.ended', { runId: 'run-7', status: 'cancelled' });
    await settle(2);
    expect(button(el, 'Start training')!.disabled).toBe(false);
    expect(app.notices.at(-1)!.text).toContain('cancelled');
  });

  it('draws the charts’ frame and axes before the first epoch, with a note on when the first point comes', async () => {
    const drawn = stubCanvas();
    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([30, 20]);
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelectorAll('.uplot')).toHaveLength(0); // no run yet: no charts

    button(el, 'Start training')!.click();
    await settle();
    // Both charts are drawn, empty: the x axis spans the 10 planned epochs, loss 0..1, accuracy 0..100%.
    expect(el.querySelectorAll('figure .uplot')).toHaveLength(2);
    const loss = drawnText(el, drawn, 'Error (loss)');
    expect(loss).toEqual(expect.arrayContaining(['Epoch', '2', '4', '10', '0', '0.2', '1']));
    expect(loss).not.toContain('12');
    expect(drawnText(el, drawn, 'Accuracy')).toEqual(expect.arrayContaining(['Epoch', '2', '10', '0%', '40%', '100%']));
    expect(placeholders(el)).toEqual(['The first point appears when epoch 1 ends.', 'The first point appears when epoch 1 ends.']);

    // Before the epochs: the step under way and its ETA.
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'extract', fraction: 0.2, etaSeconds: 80 } });
    await settle(2);
    expect(placeholders(el)[0]).toBe('The first point appears when epoch 1 ends, after preparing your images — this step ends in about 1 min 20 s.');

    // In epoch 1: 2 of 8 batches done, 390 s left for the 9.75 epochs to go → 30 s to the end of epoch 1.
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'train', fraction: 0.025, epoch: 1, epochs: 10, batch: 2, batches: 8, etaSeconds: 390 } });
    await settle(2);
    expect(placeholders(el)).toEqual(['The first point appears when epoch 1 ends (ETA 30 s).', 'The first point appears when epoch 1 ends (ETA 30 s).']);
    expect(el.textContent).toContain('ETA 6 min 30 s'); // the progress bar keeps the whole phase’s ETA

    // The first epoch: the note goes, the point is drawn on the same 1..10 axis.
    api.emit('training.event', { runId: 'run-7', event: { type: 'epoch', record: epochRecord(1) } });
    await settle(2);
    expect(placeholders(el)).toEqual([]);
    expect(el.querySelectorAll('figure .uplot')).toHaveLength(2);
    expect(drawnText(el, drawn, 'Error (loss)')).toEqual(expect.arrayContaining(['Epoch', '2', '10']));
    expect(drawnText(el, drawn, 'Accuracy')).toEqual(expect.arrayContaining(['Epoch', '2', '10', '0%', '100%']));
  });

  it('keeps the placeholder readable without a canvas, and drops it when the first epoch arrives', async () => {
    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([30, 20]);
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    button(el, 'Start training')!.click();
    await settle();
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'train', fraction: 0.1, epoch: 1, epochs: 10, batch: 4, batches: 8, etaSeconds: 950 } });
    await settle(2);
    expect(el.querySelectorAll('.uplot')).toHaveLength(0);
    expect(placeholders(el)).toEqual(['The first point appears when epoch 1 ends (ETA 50 s).', 'The first point appears when epoch 1 ends (ETA 50 s).']);
    expect(app.training.plannedEpochs).toBe(10);

    api.emit('training.event', { runId: 'run-7', event: { type: 'epoch', record: epochRecord(1) } });
    await settle(2);
    expect(placeholders(el)).toEqual([]);
    expect(el.textContent).toMatch(/Epoch 1: Training 1\.000, Held back 1\.100/);
  });

  it('labels only epoch 1 on an empty chart whose planned epochs are unknown', async () => {
    const drawn = stubCanvas();
    const el = target();
    component = mount(TrainingCurves, { target: el, props: { history: [], theme: 'light', planned: null, placeholder: 'The first point appears when epoch 1 ends.' } });
    await settle();
    const x = drawnText(el, drawn, 'Error (loss)');
    expect(x).toEqual(expect.arrayContaining(['1', 'Epoch']));
    expect(x).not.toContain('2');
    expect(placeholders(el)).toHaveLength(2);
  });

  it('says each step in plain words with its counts, and shows no stuck “0%” while the model loads', async () => {
    const p = (extra: Partial<ProgressEvent>): ProgressEvent => ({ type: 'progress', phase: 'train', fraction: 0, ...extra });
    expect(progressLabel(p({ phase: 'extract', fraction: 0.25, done: 42, total: 168 }))).toBe('Preparing your images 42/168');
    expect(progressLabel(p({ phase: 'evaluate', done: 30, total: 30 }))).toBe('Measuring accuracy on held-out images 30/30');
    expect(progressLabel(p({ phase: 'train', epoch: 2, epochs: 10, done: 300, total: 1380 }))).toBe('Training — epoch 2 of 10');
    expect(progressLabel(p({ phase: 'load' }))).toBe('Getting the model ready');
    expect(progressLabel(p({ phase: 'extract' }))).toBe('Preparing your images');

    const api = trainApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset([30, 20]);
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    button(el, 'Start training')!.click();
    await settle();
    expect(button(el, 'Cancel training')!.disabled).toBe(false);
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'load', fraction: 0, message: 'building ResNet-50' } });
    await settle(2);
    const bar = el.querySelector<HTMLElement>('[role="progressbar"]')!;
    expect(bar.getAttribute('aria-valuenow')).toBeNull(); // a moving bar, not "0%"
    expect(el.textContent).toContain('Getting the model ready');
    expect(el.textContent).not.toContain('building ResNet-50'); // the engine's log line stays out of the way
    api.emit('training.event', { runId: 'run-7', event: { type: 'progress', phase: 'extract', fraction: 0.25, done: 42, total: 168, etaSeconds: 54 } });
    await settle(2);
    expect(el.querySelector('.progress .label')!.textContent).toBe('Preparing your images 42/168');
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
  });

  it('knows the planned epochs and when the epoch under way ends', () => {
    expect(plannedEpochs({ mode: 'head', epochs: 8 })).toBe(8);
    expect(plannedEpochs({ mode: 'full', epochs: 8 })).toBe(8);
    expect(plannedEpochs({ mode: 'finetune', epochs: 8 })).toBe(16); // the new layer, then the backbone

    const p = (extra: Partial<ProgressEvent>): ProgressEvent => ({ type: 'progress', phase: 'train', fraction: 0, ...extra });
    // Epoch 3 of 5, half done: 2.5 epochs to go in 100 s → 20 s for this one.
    expect(epochEtaSeconds(p({ epoch: 3, epochs: 5, batch: 5, batches: 10, etaSeconds: 100 }))).toBeCloseTo(20);
    expect(epochEtaSeconds(p({ epoch: 1, epochs: 5, batch: 5, batches: 10 }))).toBeNull();
    expect(epochEtaSeconds(p({ etaSeconds: 100 }))).toBeNull();
    expect(firstPointNote(null)).toBe('The first point appears when epoch 1 ends.');
    expect(firstPointNote(p({ phase: 'load', fraction: 0 }))).toBe('The first point appears when epoch 1 ends, after getting the model ready.');
    // One pair of brackets at most, whatever the step.
    for (const phase of ['scan', 'load', 'extract', 'evaluate', 'save'] as const) expect(firstPointNote(p({ phase, etaSeconds: 54 }))).not.toMatch(/\(.*\(/);
    expect(firstPointNote(p({ phase: 'finetune', epoch: 1, epochs: 4 }))).toBe('The first point appears when epoch 1 ends.');
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
