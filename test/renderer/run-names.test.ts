// Plain words on screen: runs named by their facts (or by the person), renamed in place with the
// engine's own validation; the split of each class explained; the precise terms under the hood;
// random-start networks behind "Show all"; the browser host's zip download offered only there.
import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import ResultsScreen from '../../renderer/src/screens/ResultsScreen.svelte';
import TrainScreen from '../../renderer/src/screens/TrainScreen.svelte';
import ExportScreen from '../../renderer/src/screens/ExportScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { describeRun, runTitle } from '../../renderer/src/lib/run-name';
import { splitByClass } from '../../renderer/src/lib/split';
import { plainWarning } from '../../renderer/src/lib/terms';
import { exportZipUrl } from '../../renderer/src/lib/download';
import type { DatasetView, ModelCard, RunRecord } from '../../renderer/src/types';
import { parseParams } from '../../main/api/contract';
import { summarizeRun } from '../../main/engine/service/run-summary';
import { makeRunRecord } from '../fixtures/run-record';
import { appInfo, button, fakeApi, PROJECT, settle, target } from './fake-api';

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

/** A finished ResNet-50 fine-tune: 93% of 40 held-back images, 2 min 10 s from start to end. */
function finished(overrides: Partial<RunRecord> = {}): RunRecord {
  const base = makeRunRecord({ id: '20261202-012751-814-5090', created: '2026-12-02T01:27:51.814Z', updated: '2026-12-02T01:30:01.814Z', config: { backbone: 'resnet50', mode: 'finetune', weights: 'imagenet' } });
  return {
    ...base,
    labels: ['birds', 'fruit'],
    trainImages: 63,
    valImages: 8,
    bestEpoch: 2,
    lastEpoch: 2,
    metrics: {
      valAccuracy: 0.93,
      valLoss: 0.21,
      bestEpoch: 2,
      labels: ['birds', 'fruit'],
      confusion: [
        [4, 0],
        [1, 3],
      ],
      perClass: [
        { name: 'birds', precision: 0.8, recall: 1, f1: 0.89, support: 4 },
        { name: 'fruit', precision: 1, recall: 0.75, f1: 0.86, support: 4 },
      ],
      misclassified: [],
    },
    ...overrides,
  };
}

function dataset(classes: Record<string, number>): DatasetView {
  const list = Object.entries(classes).map(([name, images]) => ({ name, images, folders: [`/data/${name}`] }));
  return { project: { ...PROJECT, classes: list }, classes: list, problems: [], warnings: [], totalImages: list.reduce((n, c) => n + c.images, 0) };
}

/** The engine's side of runs.*: the real request validation and the real run summary. */
function runsApi(runs: RunRecord[]) {
  return fakeApi({
    'runs.list': () => runs.map(summarizeRun),
    'runs.get': ({ runId }) => structuredClone(runs.find((r) => r.id === runId)!),
    'runs.rename': (params) => {
      const { runId, name } = parseParams('runs.rename', params);
      const run = runs.find((r) => r.id === runId)!;
      if (name === null) delete run.name;
      else run.name = name;
      return summarizeRun(run);
    },
  });
}

describe('run names', () => {
  it('names a run by its facts: network · training · accuracy · time', () => {
    const run = summarizeRun(finished());
    expect(describeRun(run)).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
    expect(runTitle(run)).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
    expect(runTitle({ ...run, name: 'Garden birds v2' })).toBe('Garden birds v2');
    expect(describeRun({ ...run, mode: 'head', seconds: 42 })).toBe('ResNet-50 · quick · 93% · 42 s');
    expect(describeRun({ ...run, status: 'running', valAccuracy: null, seconds: undefined })).toBe('ResNet-50 · fine-tuned · training…');
  });

  it('shows the readable name in the run list and the summary, and renames a run in place', async () => {
    const runs = [finished()];
    const api = runsApi(runs);
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ResultsScreen, { target: el, props: { app } });
    await settle();

    expect(el.querySelector('[data-testid="run-name"]')!.textContent).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
    expect(el.querySelector('[data-testid="run-title"]')!.textContent).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
    expect(el.textContent).toContain('Run 20261202-012751-814-5090'); // the id, small
    expect(el.querySelector('ul.runs button')!.getAttribute('title')).toBe('Run 20261202-012751-814-5090');

    // Rename: the field starts with the shown name; Save sends the trimmed name.
    el.querySelector<HTMLButtonElement>('[data-testid="rename-run"]')!.click();
    await settle();
    const input = el.querySelector<HTMLInputElement>('#run-name-input')!;
    expect(input.value).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
    input.value = '  Garden birds, first try ';
    input.dispatchEvent(new Event('input'));
    button(el, 'Save')!.click();
    await settle();
    expect(api.callsOf('runs.rename')).toEqual([{ runId: '20261202-012751-814-5090', name: 'Garden birds, first try' }]);
    expect(el.querySelector('[data-testid="run-title"]')!.textContent).toBe('Garden birds, first try');
    expect(el.querySelector('[data-testid="run-name"]')!.textContent).toBe('Garden birds, first try');
    // The facts stay under the given name in the list.
    expect(el.querySelector('ul.runs')!.textContent).toContain('ResNet-50 · fine-tuned · 93% · 2 min');

    // A name the engine refuses: its message beside the field, the name unchanged.
    el.querySelector<HTMLButtonElement>('[data-testid="rename-run"]')!.click();
    await settle();
    const again = el.querySelector<HTMLInputElement>('#run-name-input')!;
    again.value = 'x'.repeat(101);
    again.dispatchEvent(new Event('input'));
    button(el, 'Save')!.click();
    await settle();
    expect(el.querySelector('[role="alert"]')!.textContent).toBe('runs.rename: invalid request — name: a name of at most 100 characters');
    expect(again.getAttribute('aria-invalid')).toBe('true');
    expect(runs[0].name).toBe('Garden birds, first try');

    // Empty: the name made from the facts comes back (name: null).
    again.value = '   ';
    again.dispatchEvent(new Event('input'));
    button(el, 'Save')!.click();
    await settle();
    expect(api.callsOf('runs.rename').at(-1)).toEqual({ runId: '20261202-012751-814-5090', name: null });
    expect(el.querySelector('[data-testid="run-title"]')!.textContent).toBe('ResNet-50 · fine-tuned · 93% · 2 min');
  });
});

describe('the training/validation split', () => {
  it('splits each class into trained-on and held-back counts only while the project has exactly the run’s images', () => {
    const run = finished({ trainImages: 63, valImages: 8 });
    expect(splitByClass(run, dataset({ birds: 35, fruit: 36 }))).toEqual(
      new Map([
        ['birds', { train: 31, val: 4 }],
        ['fruit', { train: 32, val: 4 }],
      ]),
    );
    // Images added since the run: no per-class answer rather than a wrong one.
    expect(splitByClass(run, dataset({ birds: 40, fruit: 36 }))).toBeNull();
    expect(splitByClass(run, dataset({ birds: 35 }))).toBeNull();
    expect(splitByClass(run, null)).toBeNull();
  });

  it('says “31 for training, 4 held back to check the model” on the Results screen', async () => {
    const app = new AppState(runsApi([finished()]));
    app.info = appInfo('wasm');
    app.dataset = dataset({ birds: 35, fruit: 36 });
    const el = target();
    component = mount(ResultsScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelector('[data-testid="run-split"]')!.textContent).toBe('63 for training, 8 held back to check the model');
    expect(el.querySelector('[data-testid="split-note"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(
      'Each class was split: for example birds, 35 images on the Data screen — 31 for training, 4 held back to check the model.',
    );
    const headers = Array.from(el.querySelectorAll('table[aria-label^="Precision"] thead th')).map((th) => th.textContent);
    expect(headers).toEqual(['Class', 'Precision', 'Recall', 'F1', 'Trained on', 'Held back']);
    const birds = Array.from(el.querySelectorAll('table[aria-label^="Precision"] tbody tr'))[0];
    expect(Array.from(birds.querySelectorAll('td')).slice(-2).map((td) => td.textContent)).toEqual(['31', '4']);
  });
});

const card = (id: string, weights: string[]): ModelCard => ({
  id,
  name: id === 'resnet50' ? 'ResNet-50' : id,
  description: '',
  params: 1e6,
  inputSize: 224,
  featureDim: 512,
  flops: 1e9,
  weights,
  estimates: { head: 60, finetune: 120, full: 600 },
  memory: null,
});

describe('plain words on the Train screen', () => {
  it('shows pretrained networks first, random-start ones behind “Show all”, and the precise terms under the hood', async () => {
    const api = fakeApi({ 'models.list': () => [card('resnet50', ['imagenet']), card('resnet18', []), card('vgg16', [])] });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    app.dataset = dataset({ birds: 35, fruit: 36 });
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    const shown = () => Array.from(el.querySelectorAll('[data-testid^="backbone-"]')).map((c) => c.getAttribute('data-testid'));
    expect(shown()).toEqual(['backbone-resnet50']);
    expect(el.querySelector('h2#backbone-heading')!.textContent).toBe('1. Starting network');
    const toggle = el.querySelector<HTMLButtonElement>('[data-testid="show-all-backbones"]')!;
    expect(toggle.textContent!.trim()).toBe('Show all 3 (2 more start from random weights)');
    toggle.click();
    await settle();
    expect(shown()).toEqual(['backbone-resnet50', 'backbone-resnet18', 'backbone-vgg16']);
    // With random-start networks on show, the screen no longer says every network learned from ImageNet.
    const help = () => el.querySelector('#backbone-heading')!.closest('section')!.querySelector('p.help')!.textContent!.trim();
    expect(help()).toBe('Networks with ImageNet weights have already learned from 1.3 million photos, so they need only a few of yours; a network with a random start needs many more images and time.');
    expect(el.querySelector('[data-testid="backbone-resnet18"]')!.textContent).toContain('Time (quick)');
    toggle.click();
    await settle();
    expect(help()).toBe('These networks have already learned from 1.3 million ImageNet photos, so they need only a few of yours.');
    toggle.click();
    await settle();

    // No jargon in the screen's own words; the precise terms one click away.
    // (The Advanced settings have their own, for their terms; the screen's is the last.)
    const hood = Array.from(el.querySelectorAll<HTMLDetailsElement>('[data-testid="under-the-hood"]')).at(-1)!;
    expect(hood.open).toBe(false);
    expect(hood.querySelector('summary')!.textContent).toBe('Under the hood');
    const terms = Array.from(hood.querySelectorAll('dt')).map((dt) => [dt.textContent, dt.nextElementSibling!.querySelector('.term')!.textContent]);
    expect(terms).toEqual(expect.arrayContaining([['Starting network', 'backbone'], ['Quick (last layer only)', 'head-only training (mode: head)']]));
    expect(el.querySelector('[data-testid="mode-head"]')!.textContent).toContain('Quick (last layer only)');
  });

  it('shows every network when none has pretrained weights, and says so', async () => {
    const app = new AppState(fakeApi({ 'models.list': () => [card('resnet18', []), card('vgg16', [])] }));
    app.info = appInfo('wasm');
    app.dataset = dataset({ birds: 35, fruit: 36 });
    const el = target();
    component = mount(TrainScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelectorAll('[data-testid^="backbone-"]')).toHaveLength(2);
    expect(el.querySelector('[data-testid="show-all-backbones"]')).toBeNull();
    expect(el.textContent).toContain('None of these networks has pretrained weights on this computer yet');
  });

  it('puts the trainer’s imbalance warning in plain words', () => {
    expect(plainWarning('classes are imbalanced (birds 35, fruit 8): the loss is weighted by inverse class frequency')).toBe(
      'Some classes have many more images than others (birds 35, fruit 8): images of the rarer classes count more while training, so the model does not just learn to say the big class.',
    );
    expect(plainWarning('something else')).toBe('something else');
  });
});

describe('Export: download as zip', () => {
  const usable = () => runsApi([finished()]);

  it('is offered in the browser host, with the run and the token in the address', async () => {
    expect(exportZipUrl('run-1', true, 'tok_EN')).toBe('/export.zip?run=run-1&token=tok_EN');
    expect(exportZipUrl('run-1', false, null)).toBe('/export.zip?run=run-1&onnx=0');
    const app = new AppState(usable());
    app.info = { ...appInfo('wasm'), host: 'browser' };
    const el = target();
    component = mount(ExportScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelector('[data-testid="export-zip"]')!.textContent).toContain('The output folder above is on the computer running Refit');
    expect(button(el, 'Download as zip')).toBeDefined();
    expect(el.querySelector('select')!.textContent).toContain('ResNet-50 · fine-tuned · 93% · 2 min');
  });

  it('is not offered in the desktop app, where the folder is on this computer', async () => {
    const app = new AppState(usable());
    app.info = { ...appInfo('wasm'), host: 'electron' };
    const el = target();
    component = mount(ExportScreen, { target: el, props: { app } });
    await settle();
    expect(el.querySelector('[data-testid="export-zip"]')).toBeNull();
  });
});
