// "Show where the model looks": the Grad-CAM switch in a confusion cell's gallery (predicted vs true
// class) and on the Classify screen, the maps asked for, the overlay on and off, and the upsampling
// that places a map on the image as shown.
import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import Gallery from '../../renderer/src/components/Gallery.svelte';
import ClassifyScreen from '../../renderer/src/screens/ClassifyScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { ThumbnailCache } from '../../renderer/src/state/thumbs.svelte';
import { heatOnImage, type GradCamRow } from '../../main/api/grad-cam';
import { heatColour } from '../../renderer/src/lib/heat-colours';
import { appInfo, fakeApi, settle, target } from './fake-api';

/** A 2×2 map, hot in the cell of the class asked for: top-left for the predicted class, bottom-right for the other. */
function mapRow(file: string, target: string, predicted: string): GradCamRow {
  return {
    file,
    target,
    predicted: { label: predicted, probability: 0.8 },
    map: target === predicted ? [1, 0, 0, 0] : [0, 0, 0, 1],
    height: 2,
    width: 2,
    content: { x: 0, y: 0.25, width: 1, height: 0.5 },
  };
}

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

const click = (el: Element) => (el as HTMLElement).click();
function toggle(root: ParentNode) {
  const box = root.querySelector<HTMLInputElement>('[data-testid="heatmap-toggle"] input[type="checkbox"]')!;
  box.click();
}

describe('heat map placement', () => {
  it('upsamples bilinearly with the padding undone: a wide image shows only the middle band of the square', () => {
    // A 2×2 map over the square; the image (2:1) covers rows 0.25–0.75 of it.
    const heat = heatOnImage([0, 1, 0, 1], 2, 2, { x: 0, y: 0.25, width: 1, height: 0.5 }, 4, 2);
    // Columns: left half cold, right half hot, blended in between (half-pixel centres, clamped edges).
    expect(Array.from(heat.slice(0, 4))).toEqual([0, 0.25, 0.75, 1]);
    expect(Array.from(heat.slice(4))).toEqual([0, 0.25, 0.75, 1]);
    // Rows of the image map to the square's middle: a map hot only in its top row gives the image's
    // top a blend, not the full value it would get if the padding were ignored.
    const top = heatOnImage([1, 1, 0, 0], 2, 2, { x: 0, y: 0.25, width: 1, height: 0.5 }, 1, 2);
    expect(top[0]).toBeCloseTo(0.75, 6); // image row centre 0.25 → square y 0.375 → map row 0.25 (ignoring the padding: 1)
    expect(top[1]).toBeCloseTo(0.25, 6);
    expect(() => heatOnImage([1, 2, 3], 2, 2, { x: 0, y: 0, width: 1, height: 1 }, 2, 2)).toThrow('3 values for a 2×2 map');
  });

  it('colours cold as faint blue and hot as opaque red', () => {
    expect(heatColour(0)).toEqual([0, 0, 255, 31]);
    expect(heatColour(1)).toEqual([255, 40, 0, 158]);
    expect(heatColour(Number.NaN)).toEqual(heatColour(0));
    expect(heatColour(0.5)[3]).toBeGreaterThan(heatColour(0.25)[3]);
  });
});

describe('Gallery: where the model looks', () => {
  it('asks for the cell’s maps when switched on, explains the true class on request, and hides them again', async () => {
    const api = fakeApi({
      'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
      'classify.gradCam': (p) => (p.paths ?? []).map((f) => mapRow(f, p.className ?? 'birds', 'birds')),
    });
    const images = ['/data/fruit/lemon.png', '/data/fruit/pear.png'].map((file) => ({ file, trueLabel: 'fruit', predictedLabel: 'birds', confidence: 0.8 }));
    const el = target();
    component = mount(Gallery, {
      target: el,
      props: { selection: { trueLabel: 'fruit', predictedLabel: 'birds', count: 2, images }, thumbs: new ThumbnailCache(api), onclose: () => {}, gradCam: { api, runId: 'run-2' } },
    });
    await settle();
    expect(api.callsOf('classify.gradCam')).toEqual([]);
    expect(document.querySelectorAll('[data-testid="heatmap"]').length).toBe(0);
    // The explanation's precise term is not on screen until asked for.
    expect(document.body.textContent).not.toContain('Grad-CAM');

    toggle(document);
    await settle();
    expect(api.callsOf('classify.gradCam')).toEqual([{ runId: 'run-2', paths: ['/data/fruit/lemon.png', '/data/fruit/pear.png'] }]);
    let overlays = Array.from(document.querySelectorAll<HTMLCanvasElement>('[data-testid="heatmap"]'));
    expect(overlays.map((c) => c.dataset.target)).toEqual(['birds', 'birds']);
    expect(document.querySelector('[data-testid="under-the-hood"]')!.textContent).toContain('Grad-CAM');

    // The true class instead: new maps, for 'fruit'.
    const trueClass = Array.from(document.querySelectorAll<HTMLInputElement>('input[type="radio"]')).find((r) => r.parentElement!.textContent!.includes('the true class'))!;
    trueClass.click();
    await settle();
    expect(api.callsOf('classify.gradCam')[1]).toEqual({ runId: 'run-2', className: 'fruit', paths: ['/data/fruit/lemon.png', '/data/fruit/pear.png'] });
    overlays = Array.from(document.querySelectorAll<HTMLCanvasElement>('[data-testid="heatmap"]'));
    expect(overlays.map((c) => c.dataset.target)).toEqual(['fruit', 'fruit']);

    // Back to the predicted class: the maps are kept, nothing is asked again.
    Array.from(document.querySelectorAll<HTMLInputElement>('input[type="radio"]')).find((r) => r.parentElement!.textContent!.includes('what it predicted'))!.click();
    await settle();
    expect(api.callsOf('classify.gradCam').length).toBe(2);
    expect(Array.from(document.querySelectorAll<HTMLCanvasElement>('[data-testid="heatmap"]')).map((c) => c.dataset.target)).toEqual(['birds', 'birds']);

    toggle(document);
    await settle();
    expect(document.querySelectorAll('[data-testid="heatmap"]').length).toBe(0);
    expect(document.querySelectorAll('[data-testid="gallery-item"] img').length).toBe(2);
  });

  it('a diagonal cell offers no class switch, and a failed map says why on its image', async () => {
    const api = fakeApi({
      'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
      'classify.gradCam': (p) => [mapRow(p.paths![0], 'fruit', 'fruit'), { file: p.paths![1], error: `Cannot decode image ${p.paths![1]}: corrupt or truncated image data` }],
    });
    const images = ['/data/fruit/lemon.png', '/data/fruit/broken.png'].map((file) => ({ file, trueLabel: 'fruit', predictedLabel: 'fruit', confidence: 0.9 }));
    component = mount(Gallery, {
      target: target(),
      props: { selection: { trueLabel: 'fruit', predictedLabel: 'fruit', count: 2, images }, thumbs: new ThumbnailCache(api), onclose: () => {}, gradCam: { api, runId: 'run-2' } },
    });
    await settle();
    toggle(document);
    await settle();
    expect(document.querySelectorAll('input[type="radio"]').length).toBe(0);
    expect(document.querySelectorAll('[data-testid="heatmap"]').length).toBe(1);
    expect(document.body.textContent).toContain('No map: Cannot decode image /data/fruit/broken.png: corrupt or truncated image data');
  });

  it('without a run there is no switch', async () => {
    const api = fakeApi({ 'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }) });
    component = mount(Gallery, {
      target: target(),
      props: { selection: { trueLabel: 'a', predictedLabel: 'b', count: 1, images: [{ file: '/x.png', trueLabel: 'a', predictedLabel: 'b', confidence: 0.5 }] }, thumbs: new ThumbnailCache(api), onclose: () => {} },
    });
    await settle();
    expect(document.querySelector('[data-testid="heatmap-toggle"]')).toBeNull();
  });
});

describe('Classify: where the model looks', () => {
  it('sends uploaded images again for their maps, with the run chosen, and draws them over the results', async () => {
    const api = fakeApi({
      'runs.list': () => [{ id: 'run-1', created: '2025-01-01T00:00:00.000Z', status: 'completed', backbone: 'resnet50', mode: 'head', valAccuracy: 0.9, epochs: 5 }],
      'classify.upload': ({ images }) => images.map((img) => ({ file: img.name, top: [{ label: 'cat', probability: 0.9 }, { label: 'dog', probability: 0.1 }] })),
      'classify.gradCam': (p) => (p.images ?? []).map((img) => mapRow(img.name, 'cat', 'cat')),
    });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ClassifyScreen, { target: el, props: { app } });
    await settle();
    const input = el.querySelector<HTMLInputElement>('[data-testid="classify-input"]')!;
    const files = ['tabby.png', 'rex.png'].map((n) => new File([new Uint8Array([137, 80, 78, 71, n.length])], n, { type: 'image/png' }));
    Object.defineProperty(input, 'files', { value: files, configurable: true });
    input.dispatchEvent(new Event('change', { bubbles: true }));
    await settle(12);
    expect(el.querySelectorAll('[data-testid="classify-result"]').length).toBe(2);
    expect(el.querySelectorAll('[data-testid="heatmap"]').length).toBe(0);

    toggle(el);
    await settle(12);
    const calls = api.callsOf('classify.gradCam');
    expect(calls.length).toBe(1);
    expect(calls[0].paths).toBeUndefined();
    expect(calls[0].images!.map((i) => i.name)).toEqual(['tabby.png', 'rex.png']);
    // The bytes sent are the file's own.
    expect(atob(calls[0].images![0].data)).toBe(String.fromCharCode(137, 80, 78, 71, 9));
    expect(Array.from(el.querySelectorAll<HTMLCanvasElement>('[data-testid="heatmap"]')).map((c) => c.dataset.target)).toEqual(['cat', 'cat']);
    // Classify has no true class to switch to.
    expect(el.querySelectorAll('input[type="radio"]').length).toBe(0);

    toggle(el);
    await settle();
    expect(el.querySelectorAll('[data-testid="heatmap"]').length).toBe(0);
  });
});
