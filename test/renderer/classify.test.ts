import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import ClassifyScreen from '../../renderer/src/screens/ClassifyScreen.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { csvField, toCsv } from '../../renderer/src/lib/csv';
import { filterRows, resultsCsv, type ResultRow } from '../../renderer/src/lib/classify';
import { appInfo, fakeApi, settle, target } from './fake-api';

// What the "model" says about each uploaded file, by name.
const VERDICTS: Record<string, [string, number][]> = {
  'tabby.png': [['cat', 0.95], ['dog', 0.04], ['bird', 0.01]],
  'maybe.png': [['cat', 0.48], ['dog', 0.42], ['bird', 0.1]],
  'rex.jpg': [['dog', 0.9], ['cat', 0.07], ['bird', 0.03]],
  'my, "best" parrot.png': [['bird', 0.55], ['cat', 0.3], ['dog', 0.15]],
};

function classifyApi() {
  return fakeApi({
    'runs.list': () => [{ id: 'run-1', created: '2025-01-01T00:00:00.000Z', status: 'completed', backbone: 'resnet50', mode: 'head', valAccuracy: 0.9, epochs: 5 }],
    'runs.get': () => {
      throw new Error('not needed');
    },
    'classify.upload': ({ images }) =>
      images.map((img) => ({ file: img.name, top: (VERDICTS[img.name] ?? []).map(([label, probability]) => ({ label, probability })) })),
  });
}

const png = (name: string, bytes = [137, 80, 78, 71, 1, 2, 3]) => new File([new Uint8Array(bytes)], name, { type: 'image/png' });

/** Picks an option the way a person does (the option becomes :checked), then fires change. */
function choose(select: HTMLSelectElement, value: string) {
  for (const o of Array.from(select.options)) o.selected = o.value === value;
  select.dispatchEvent(new Event('change', { bubbles: true }));
}

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

describe('CSV', () => {
  it('quotes commas, quotes and newlines, and defuses formulas', () => {
    expect(csvField('plain.png')).toBe('plain.png');
    expect(csvField('a,b.png')).toBe('"a,b.png"');
    expect(csvField('say "hi".png')).toBe('"say ""hi"".png"');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField(0.5)).toBe('0.5');
    expect(toCsv(['a', 'b'], [['x,y', 1]])).toBe('a,b\r\n"x,y",1\r\n');
  });
});

describe('Classify screen', () => {
  it('uploads images, shows top-3 labels, filters by label and low confidence, and saves a quoted CSV', async () => {
    const api = classifyApi();
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ClassifyScreen, { target: el, props: { app } });
    await settle();

    const classifyButton = Array.from(el.querySelectorAll('button')).find((b) => b.textContent!.trim() === 'Classify images');
    expect(classifyButton).toBeDefined();

    const files = [png('tabby.png'), png('maybe.png'), png('rex.jpg'), png('my, "best" parrot.png'), new File(['hello'], 'notes.txt', { type: 'text/plain' })];
    await app.classify.classifyFiles(files);
    await settle();

    // One upload with the four images (the text file is skipped), as base64.
    const uploads = api.callsOf('classify.upload');
    expect(uploads).toHaveLength(1);
    expect(uploads[0].images.map((i) => i.name)).toEqual(['tabby.png', 'maybe.png', 'rex.jpg', 'my, "best" parrot.png']);
    expect(uploads[0].images[0].data).toBe(btoa(String.fromCharCode(137, 80, 78, 71, 1, 2, 3)));
    expect(uploads[0].topK).toBe(3);

    const cards = () => Array.from(el.querySelectorAll<HTMLElement>('[data-testid="classify-result"]'));
    expect(cards()).toHaveLength(4);
    const first = cards()[0];
    expect(Array.from(first.querySelectorAll('.top li')).map((li) => li.textContent!.replace(/\s+/g, ''))).toEqual(['cat95.0%', 'dog4.0%', 'bird1.0%']);
    expect(el.querySelector('[data-testid="classify-count"]')!.textContent).toBe('Showing 4 of 4');

    // Filter by label.
    const labelSelect = el.querySelector<HTMLSelectElement>('select[aria-label="Filter by label"]')!;
    expect(Array.from(labelSelect.options).map((o) => o.value)).toEqual(['', 'bird', 'cat', 'dog']);
    choose(labelSelect, 'cat');
    await settle(2);
    expect(cards().map((c) => c.querySelector('.name')!.textContent)).toEqual(['tabby.png', 'maybe.png']);

    // Low confidence (default threshold 60%) within "cat".
    const low = Array.from(el.querySelectorAll<HTMLInputElement>('input[type="checkbox"]')).find((i) => i.parentElement!.textContent!.includes('Low confidence only'))!;
    low.click();
    await settle(2);
    expect(cards().map((c) => c.querySelector('.name')!.textContent)).toEqual(['maybe.png']);
    expect(cards()[0].textContent).toContain('Low confidence');

    // All labels, low confidence: maybe (48%) and the parrot (55%).
    choose(labelSelect, '');
    await settle(2);
    expect(cards().map((c) => c.querySelector('.name')!.textContent)).toEqual(['maybe.png', 'my, "best" parrot.png']);

    // A lower threshold: only below 50%.
    const slider = el.querySelector<HTMLInputElement>('input[aria-label="Low-confidence threshold"]')!;
    slider.value = '0.5';
    slider.dispatchEvent(new Event('input', { bubbles: true }));
    await settle(2);
    expect(cards().map((c) => c.querySelector('.name')!.textContent)).toEqual(['maybe.png']);

    // The CSV holds what is shown; then everything, with proper quoting.
    expect(app.classify.csv()).toBe('file,label_1,probability_1,label_2,probability_2,label_3,probability_3,error\r\nmaybe.png,cat,0.48,dog,0.42,bird,0.1,\r\n');
    low.click();
    await settle(2);
    const csv = app.classify.csv().split('\r\n');
    expect(csv).toHaveLength(6);
    expect(csv[4]).toBe('"my, ""best"" parrot.png",bird,0.55,cat,0.3,dog,0.15,');

    // Save CSV downloads it through a blob link.
    const created: Blob[] = [];
    const original = URL.createObjectURL;
    URL.createObjectURL = (b: Blob | MediaSource) => {
      created.push(b as Blob);
      return 'blob:test';
    };
    try {
      const save = Array.from(el.querySelectorAll('button')).find((b) => b.textContent!.trim() === 'Save CSV')!;
      save.click();
      expect(created).toHaveLength(1);
      expect(await created[0].text()).toContain('"my, ""best"" parrot.png"');
    } finally {
      URL.createObjectURL = original;
    }
  });

  it('filters rows (pure)', () => {
    const rows: ResultRow[] = [
      { id: 1, file: 'a', thumb: null, top: [{ label: 'x', probability: 0.9 }] },
      { id: 2, file: 'b', thumb: null, top: [{ label: 'y', probability: 0.3 }] },
      { id: 3, file: 'c', thumb: null, top: [], error: 'unreadable' },
    ];
    expect(filterRows(rows, { label: '', lowConfidenceOnly: true, threshold: 0.5 }).map((r) => r.file)).toEqual(['b']);
    expect(filterRows(rows, { label: 'x', lowConfidenceOnly: false, threshold: 0.5 }).map((r) => r.file)).toEqual(['a']);
    expect(resultsCsv([rows[2]])).toContain('c,,,,,,,unreadable');
  });
});
