// Issue 14's dead ends and wrong advice, each fixed and checked: per-kind "what to do", banners that
// stay on their screen, Classify without a model, "Next" between screens, diagonal confusion cells,
// streamed classification with the right counts, the folder picker's new folders and typed paths,
// and the project panel when there is nothing to open.
import { afterEach, describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import App from '../../renderer/src/App.svelte';
import ClassifyScreen from '../../renderer/src/screens/ClassifyScreen.svelte';
import ResultsScreen from '../../renderer/src/screens/ResultsScreen.svelte';
import FolderPicker from '../../renderer/src/components/FolderPicker.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import { GENERAL_HINT, hintFor, KIND_HINTS } from '../../renderer/src/lib/errors';
import { exportStepLabel, formatEstimate } from '../../renderer/src/lib/format';
import { ERROR_KINDS, RefitError } from '../../main/api/errors';
import type { ClassifyRow, DatasetView, DirListing, RunRecord, RunSummary } from '../../renderer/src/types';
import { appInfo, button, fakeApi, PROJECT, settle, target, type Handlers } from './fake-api';

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

function typeInto(input: HTMLInputElement, value: string) {
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

const banners = (root: ParentNode) => Array.from(root.querySelectorAll<HTMLElement>('[data-testid="error-banner"]'));

const twoClasses: DatasetView = {
  project: PROJECT,
  classes: [
    { name: 'birds', images: 35, folders: ['/data/birds'] },
    { name: 'fruit', images: 26, folders: ['/data/fruit'] },
  ],
  problems: [],
  warnings: [],
  totalImages: 61,
};

const RUN: RunSummary = { id: 'run-1', created: '2025-01-01T00:00:00.000Z', status: 'completed', backbone: 'resnet50', mode: 'head', valAccuracy: 0.9, epochs: 5 };

function baseHandlers(over: Handlers = {}): Handlers {
  return {
    'app.info': () => appInfo('wasm', true),
    'project.recent': () => ['/projects/demo'],
    'project.current': () => twoClasses,
    'training.status': () => ({ runId: null, state: 'idle', last: null }),
    'models.list': () => [],
    'runs.list': () => [],
    'dataset.images': ({ className }) => ({ className, total: 0, images: [] }),
    ...over,
  };
}

async function start(handlers: Handlers) {
  const api = fakeApi(handlers);
  const app = new AppState(api);
  const el = target();
  component = mount(App, { target: el, props: { app } });
  await app.init();
  await settle();
  return { api, app, el };
}

describe('what to do, per kind of error', () => {
  it('has its own advice for every kind the engine reports, none of it "try again… rescan… restart"', () => {
    const seen = new Set<string>();
    for (const kind of ERROR_KINDS) {
      const hint = hintFor('whatever the message says', kind);
      expect(hint).toBe(KIND_HINTS[kind]);
      expect(hint).not.toBe(GENERAL_HINT);
      expect(hint).not.toMatch(/rescan|restart|try again/i);
      seen.add(hint);
    }
    expect(seen.size).toBe(ERROR_KINDS.length); // one piece of advice per kind
    // The panel the advice points to exists: "Switch project"/"Open project" in the sidebar, not "the top of the Data screen".
    expect(KIND_HINTS['no-project']).toContain('sidebar');
    expect(Object.values(KIND_HINTS).join(' ')).not.toContain('project panel');
  });

  it('still advises an export folder that is not empty when the engine gives no kind', () => {
    const message = 'Refusing to export to /tmp/out: the folder is not empty and is not a previous Refit export (it has no refit.json).';
    expect(hintFor(message)).toBe(KIND_HINTS['folder-not-empty']);
    expect(hintFor('Project demo has no trained model yet: train one on the Train screen first')).toBe(KIND_HINTS['no-model']);
    expect(hintFor('something nobody foresaw')).toBe(GENERAL_HINT);
  });

  it('shows the kind’s advice in the banner, on the screen that raised it only', async () => {
    const { el, app } = await start(
      baseHandlers({
        'training.start': () => {
          throw new RefitError('busy', 'A training run is already in progress (run r1): wait until it ends, or cancel it, before starting another');
        },
        'models.list': () => [
          { id: 'resnet50', name: 'ResNet-50', description: '', params: 25e6, inputSize: 224, featureDim: 2048, flops: 7.7e9, weights: ['imagenet'], estimates: { head: 95, finetune: 900, full: 20000 }, memory: null },
        ],
      }),
    );
    app.go('train');
    await settle();
    button(el, 'Start training')!.click();
    await settle();
    expect(banners(el)).toHaveLength(1);
    expect(banners(el)[0].textContent).toContain('Couldn’t start training');
    expect(banners(el)[0].textContent).toContain(KIND_HINTS.busy);
    // It belongs to Train: not on Data, back on Train.
    button(el, 'Data')!.click();
    await settle();
    expect(banners(el)).toHaveLength(0);
    button(el, 'Train')!.click();
    await settle();
    expect(banners(el)).toHaveLength(1);
    // A failure that concerns every screen (the connection) shows on every screen.
    app.report('Something failed in the background', new Error('Lost the connection to the Refit server.'), null);
    button(el, 'Data')!.click();
    await settle();
    expect(banners(el).map((b) => b.querySelector('strong')!.textContent)).toEqual(['Something failed in the background']);
  });

  it('says a missing project folder is missing (not that it lacks a project.json), and clears the panel’s errors once a project opens', async () => {
    let attempts = 0;
    const { el, app } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', false),
        'project.current': () => null,
        'project.open': () => {
          if (attempts++ === 0) throw new RefitError('not-found', 'There is no folder /projects/gone (moved or deleted?): choose the project’s folder again, or create a new project');
          return twoClasses;
        },
      }),
    );
    typeInto(el.querySelector<HTMLInputElement>('#project-dir')!, '/projects/gone');
    await settle(1);
    button(el, 'Open')!.click();
    await settle();
    expect(banners(el)[0].textContent).toContain(KIND_HINTS['not-found']);
    expect(banners(el)[0].textContent).not.toContain('project.json');
    button(el, 'Open')!.click();
    await settle();
    expect(app.hasProject).toBe(true);
    expect(app.errors).toEqual([]);
  });
});

describe('the project panel before the first project', () => {
  it('makes "Create" the main button when there is no project to open, and suggests a folder named after the project', async () => {
    const { el, api } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', false),
        'project.current': () => null,
        'project.recent': () => [],
        'fs.listDir': ({ dir }) => ({ dir: dir ?? '/home/ada', parent: '/home', entries: [] }),
        'project.open': () => twoClasses,
      }),
    );
    expect(el.querySelector('h1')!.textContent).toBe('Start a project');
    expect(button(el, 'Create')!.classList.contains('primary')).toBe(true);
    expect(button(el, 'Open')!.classList.contains('primary')).toBe(false);
    const dir = el.querySelector<HTMLInputElement>('#project-dir')!;
    expect(dir.value).toBe('/home/ada/Refit projects/My project');
    typeInto(el.querySelector<HTMLInputElement>('#project-name')!, 'Garden birds');
    await settle();
    expect(dir.value).toBe('/home/ada/Refit projects/Garden birds');
    button(el, 'Create')!.click();
    await settle();
    expect(api.callsOf('project.open')).toEqual([{ dir: '/home/ada/Refit projects/Garden birds', create: true, name: 'Garden birds' }]);
  });

  it('starts from the images: a project named after the data folder, in Refit projects, with the folder added', async () => {
    const fsTree: Record<string, string[]> = { '/home/ada': [], '/data': ['photos5'], '/data/photos5': ['birds', 'fruit'] };
    const { el, api, app } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', false),
        'project.current': () => null,
        'project.recent': () => [],
        'fs.listDir': ({ dir }) => {
          const d = dir ?? '/home/ada';
          if (!fsTree[d]) throw new RefitError('not-found', `Folder not found: ${d}`);
          return { dir: d, parent: '/', entries: fsTree[d].map((n) => ({ name: n, path: `${d}/${n}`, isDir: true })) };
        },
        'project.open': ({ dir }) => {
          // A folder of that name with other files in it already: the next name is tried.
          if (dir.endsWith('/photos5')) throw new RefitError('folder-not-empty', `${dir} is not empty and is not a Refit project`);
          return { ...twoClasses, classes: [], totalImages: 0, project: { ...PROJECT, dir, name: 'photos5 2' } };
        },
        'dataset.addFolders': () => twoClasses,
      }),
    );
    expect(el.querySelector('[aria-label="Drop a folder of images to start"]')!.textContent).toContain('/home/ada/Refit projects');
    el.querySelector<HTMLButtonElement>('[data-testid="start-from-data"]')!.click();
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    typeInto(dialog.querySelector<HTMLInputElement>('#folder-picker-path')!, '/data/photos5');
    await settle(1);
    button(dialog, 'Select the typed folder')!.click();
    await settle(10);
    expect(api.callsOf('project.open')).toEqual([
      { dir: '/home/ada/Refit projects/photos5', create: true, name: 'photos5' },
      { dir: '/home/ada/Refit projects/photos5 2', create: true, name: 'photos5 2' },
    ]);
    expect(api.callsOf('dataset.addFolders')).toEqual([{ folders: ['/data/photos5'] }]);
    expect(app.hasProject).toBe(true);
    expect(app.errors).toEqual([]);
    expect(el.querySelector('h1')!.textContent).toBe('Data');
    expect(el.textContent).toContain('61 images in 2 classes');
  });

  it('keeps "Open" the main button when there are recent projects, and never overwrites a typed folder', async () => {
    const { el } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', false),
        'project.current': () => null,
        'fs.listDir': ({ dir }) => ({ dir: dir ?? '/home/ada', parent: '/home', entries: [] }),
      }),
    );
    expect(button(el, 'Open')!.classList.contains('primary')).toBe(true);
    const dir = el.querySelector<HTMLInputElement>('#project-dir')!;
    typeInto(dir, '/elsewhere/mine');
    await settle();
    typeInto(el.querySelector<HTMLInputElement>('#project-name')!, 'Birds');
    await settle();
    expect(dir.value).toBe('/elsewhere/mine');
  });
});

describe('the folder picker', () => {
  function pickerApi() {
    // A fresh tree for each test (New folder adds to it).
    const tree: Record<string, string[]> = { '/home/ada': ['photos'], '/home/ada/photos': ['birds', 'fruit'], '/home/ada/photos/birds': [], '/home/ada/photos/fruit': [] };
    const api = fakeApi({
      'fs.listDir': ({ dir }) => {
        const d = dir ?? '/home/ada';
        if (!tree[d]) throw new RefitError('not-found', `Folder not found: ${d}; choose another folder`);
        return { dir: d, parent: d.slice(0, d.lastIndexOf('/')) || '/', entries: tree[d].map((n) => ({ name: n, path: `${d}/${n}`, isDir: true })) } satisfies DirListing;
      },
      'fs.makeDir': ({ parent, name }) => {
        const d = `${parent}/${name}`;
        tree[parent].push(name);
        tree[d] = [];
        return { dir: d, parent, entries: [] };
      },
    });
    return api;
  }

  it('makes a new folder where it is, and opens it', async () => {
    const api = pickerApi();
    const chosen: string[] = [];
    component = mount(FolderPicker, { target: target(), props: { api, start: '/home/ada/photos', onselect: (d: string) => chosen.push(d), onclose: () => {} } });
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.textContent).toContain('2 sub-folders');
    button(dialog, 'New folder')!.click();
    await settle();
    typeInto(dialog.querySelector<HTMLInputElement>('#folder-picker-new')!, 'plants');
    await settle(1);
    button(dialog, 'Make folder')!.click();
    await settle();
    expect(api.callsOf('fs.makeDir')).toEqual([{ parent: '/home/ada/photos', name: 'plants' }]);
    expect(dialog.querySelector<HTMLInputElement>('#folder-picker-path')!.value).toBe('/home/ada/photos/plants');
    button(dialog, 'Select this folder')!.click();
    expect(chosen).toEqual(['/home/ada/photos/plants']);
  });

  it('never returns the parent for a typed path: it selects the typed folder, or offers to make it', async () => {
    const api = pickerApi();
    const chosen: string[] = [];
    component = mount(FolderPicker, { target: target(), props: { api, start: '/home/ada/photos', onselect: (d: string) => chosen.push(d), onclose: () => {} } });
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    const path = dialog.querySelector<HTMLInputElement>('#folder-picker-path')!;
    // An existing folder typed but not opened: "Select" takes it, not the listed parent.
    typeInto(path, '/home/ada/photos/fruit');
    await settle(1);
    button(dialog, 'Select the typed folder')!.click();
    await settle();
    expect(chosen).toEqual(['/home/ada/photos/fruit']);
    // A new folder typed: said to be new (not "moved or deleted?"), nothing selected until it is made.
    typeInto(path, '/home/ada/photos/new-project');
    await settle(1);
    button(dialog, 'Select the typed folder')!.click();
    await settle();
    expect(chosen).toHaveLength(1);
    const missing = dialog.querySelector<HTMLElement>('[data-testid="folder-missing"]')!;
    expect(missing.textContent).toContain('There is no folder new-project in /home/ada/photos yet.');
    expect(dialog.textContent).not.toMatch(/moved or deleted/);
    expect(button(dialog, 'Select the typed folder')!.disabled).toBe(true);
    button(missing, 'Make “new-project”')!.click();
    await settle();
    expect(api.callsOf('fs.makeDir')).toEqual([{ parent: '/home/ada/photos', name: 'new-project' }]);
    button(dialog, 'Select this folder')!.click();
    expect(chosen).toEqual(['/home/ada/photos/fruit', '/home/ada/photos/new-project']);
  });

  it('previews the classes a folder would add', async () => {
    const api = pickerApi();
    component = mount(FolderPicker, { target: target(), props: { api, start: '/home/ada/photos', classesPreview: true, onselect: () => {}, onclose: () => {} } });
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.querySelector('[data-testid="classes-preview"]')!.textContent).toBe('→ 2 classes: birds, fruit');
    button(dialog, 'Parent folder')!.click();
    await settle();
    expect(dialog.querySelector('[data-testid="classes-preview"]')!.textContent).toBe('→ 1 class: photos');
  });

  it('opens a field’s new path at its nearest existing parent, offering the new folder', async () => {
    const api = pickerApi();
    component = mount(FolderPicker, { target: target(), props: { api, start: '/home/ada/refit/flowers', onselect: () => {}, onclose: () => {} } });
    await settle(10);
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.querySelector<HTMLInputElement>('#folder-picker-path')!.value).toBe('/home/ada');
    expect(dialog.querySelector('[role="alert"]')).toBeNull();
    expect(dialog.querySelector('[data-testid="folder-missing"]')!.textContent).toContain('There is no folder refit in /home/ada yet.');
  });
});

describe('next steps', () => {
  it('Data → Train once two classes have images', async () => {
    const { el, app } = await start(baseHandlers());
    expect(el.querySelector('h1')!.textContent).toBe('Data');
    el.querySelector<HTMLButtonElement>('[data-testid="next-train"]')!.click();
    await settle();
    expect(app.screen).toBe('train');
  });

  it('no Next from Data with a single class', async () => {
    const one = { ...twoClasses, classes: [twoClasses.classes[0]], totalImages: 35 };
    const { el } = await start(baseHandlers({ 'project.current': () => one }));
    expect(el.querySelector('[data-testid="next-train"]')).toBeNull();
  });
});

function resultsRecord(withCorrect: boolean): RunRecord {
  const labels = ['birds', 'fruit'];
  return {
    format: 'refit-run',
    version: 1,
    id: 'run-1',
    created: RUN.created,
    updated: RUN.created,
    status: 'completed',
    config: { backbone: 'resnet50', weights: 'imagenet', mode: 'head', inputSize: 224, learningRate: 0.001, head: { kind: 'linear' }, epochs: 5, batchSize: 16, valSplit: 0.2, seed: 42, augment: true, patience: 5, classWeights: true },
    labels,
    preprocessing: { mode: 'caffe' } as unknown as RunRecord['preprocessing'],
    datasetFingerprint: 'abc',
    trainImages: 10,
    valImages: 5,
    history: [],
    bestEpoch: 1,
    lastEpoch: 1,
    metrics: {
      valAccuracy: 0.8,
      valLoss: 0.4,
      bestEpoch: 1,
      labels,
      confusion: [
        [2, 1],
        [0, 2],
      ],
      perClass: [],
      misclassified: [{ file: '/d/birds/b3.png', trueLabel: 'birds', predictedLabel: 'fruit', confidence: 0.7 }],
      ...(withCorrect
        ? {
            correct: [
              { file: '/d/birds/b1.png', trueLabel: 'birds', predictedLabel: 'birds', confidence: 0.6 },
              { file: '/d/fruit/f1.png', trueLabel: 'fruit', predictedLabel: 'fruit', confidence: 0.7 },
              { file: '/d/birds/b2.png', trueLabel: 'birds', predictedLabel: 'birds', confidence: 0.9 },
              { file: '/d/fruit/f2.png', trueLabel: 'fruit', predictedLabel: 'fruit', confidence: 0.95 },
            ],
          }
        : {}),
    },
    featureKey: 'k',
  };
}

describe('Results', () => {
  async function mountResults(withCorrect: boolean) {
    const api = fakeApi({
      'runs.list': () => [RUN],
      'runs.get': () => resultsRecord(withCorrect),
      'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
    });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ResultsScreen, { target: el, props: { app } });
    await settle();
    return { app, el };
  }

  it('opens the images of a diagonal cell too (the least sure first)', async () => {
    const { el } = await mountResults(true);
    el.querySelector<HTMLButtonElement>('[data-testid="cell-0-0"]')!.click();
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.textContent).toContain('birds: recognised correctly');
    expect(dialog.textContent).toContain('2 validation images of birds were classified correctly');
    expect(Array.from(dialog.querySelectorAll('[data-testid="gallery-item"] .name')).map((n) => n.textContent)).toEqual(['b1.png', 'b2.png']);
  });

  it('says why an older run’s diagonal cell has no images', async () => {
    const { el } = await mountResults(false);
    el.querySelector<HTMLButtonElement>('[data-testid="cell-1-1"]')!.click();
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.textContent).toContain('trained before Refit kept the list of correct images');
    expect(dialog.querySelectorAll('[data-testid="gallery-item"]')).toHaveLength(0);
  });

  it('goes on to Classify or Export with the run shown', async () => {
    const { el, app } = await mountResults(true);
    el.querySelector<HTMLButtonElement>('[data-testid="next-classify"]')!.click();
    expect(app.screen).toBe('classify');
    expect(app.classify.runId).toBe('run-1');
    el.querySelector<HTMLButtonElement>('[data-testid="next-export"]')!.click();
    expect(app.screen).toBe('export');
    expect(app.exportRunId).toBe('run-1');
  });
});

describe('Classify', () => {
  it('is disabled, with the reason, while there is no trained model', async () => {
    const api = fakeApi({ 'runs.list': () => [] });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ClassifyScreen, { target: el, props: { app } });
    await settle();
    for (const name of ['Classify images', 'Classify a folder…']) {
      const b = button(el, name)!;
      expect(b.disabled).toBe(true);
      expect(b.title).toContain('Train a model first');
    }
    const note = el.querySelector<HTMLElement>('[data-testid="classify-no-model"]')!;
    button(note, 'Go to Train')!.click();
    expect(app.screen).toBe('train');
  });

  it('streams a folder’s results as they are computed, with the engine’s count of its images', async () => {
    const files = Array.from({ length: 26 }, (_, i) => `/photos/new/img${i + 1}.png`);
    const row = (file: string): ClassifyRow => ({ file, top: [{ label: 'birds', probability: 0.9 }] });
    let release!: () => void;
    const replied = new Promise<void>((r) => (release = r));
    const api = fakeApi({
      'runs.list': () => [RUN],
      'runs.get': () => resultsRecord(true),
      'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
      'classify.files': async ({ tag }) => {
        api.emit('classify.progress', { tag: tag!, stage: 'loading', done: 0, total: 0, rows: [] });
        await replied;
        return files.map(row);
      },
    });
    const app = new AppState(api);
    app.info = appInfo('wasm');
    const el = target();
    component = mount(ClassifyScreen, { target: el, props: { app } });
    await settle();
    const done = app.classify.classifyPaths(['/photos/new']);
    await settle();
    const progress = () => el.querySelector<HTMLElement>('[data-testid="classify-progress"]')!.textContent!;
    expect(progress()).toContain('Getting the model ready');
    const [{ tag }] = api.callsOf('classify.files');
    api.emit('classify.progress', { tag: tag!, stage: 'classifying', done: 0, total: 26, rows: [] });
    api.emit('classify.progress', { tag: tag!, stage: 'classifying', done: 3, total: 26, rows: files.slice(0, 3).map(row) });
    // Another request's events (another tab) are not ours.
    api.emit('classify.progress', { tag: 'someone-else', stage: 'classifying', done: 9, total: 9, rows: [row('/x.png')] });
    await settle(2);
    expect(progress()).toContain('Classifying 26 images…');
    expect(progress()).toContain('3 of 26 done');
    expect(el.querySelectorAll('ul[aria-label="Classified images"] > *')).toHaveLength(3);
    api.emit('classify.progress', { tag: tag!, stage: 'classifying', done: 26, total: 26, rows: files.slice(3).map(row) });
    release();
    await done;
    await settle();
    // Every image once: the reply adds none of the streamed rows again.
    expect(app.classify.rows.map((r) => r.file)).toEqual(files);
    expect(el.querySelector('[data-testid="classify-progress"]')).toBeNull();
  });
});

describe('words for waiting', () => {
  it('names the export’s steps in plain words', () => {
    expect(['load', 'serialize', 'write', 'done'].map(exportStepLabel)).toEqual(['Reading the trained model', 'Packing the model into files', 'Writing the files', 'Finishing']);
  });

  it('promises "under a minute" only when even twice the estimate is', () => {
    expect(formatEstimate(25)).toBe('under a minute');
    expect(formatEstimate(32)).toBe('about 1 min');
    expect(formatEstimate(78)).toBe('about 1 min');
    expect(formatEstimate(150)).toBe('about 3 min');
  });
});
