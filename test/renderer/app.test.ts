import { afterEach, describe, expect, it, vi } from 'vitest';
import { mount, unmount } from 'svelte';
import App from '../../renderer/src/App.svelte';
import BackendBadge from '../../renderer/src/components/BackendBadge.svelte';
import { AppState } from '../../renderer/src/state/app.svelte';
import type { DatasetView, RunRecord } from '../../renderer/src/types';
import { appInfo, backend, button, fakeApi, PROJECT, settle, target, type Handlers } from './fake-api';

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

const emptyDataset: DatasetView = { project: PROJECT, classes: [], problems: [], warnings: [], totalImages: 0 };

function baseHandlers(over: Handlers = {}): Handlers {
  return {
    'app.info': () => appInfo('wasm', false),
    'project.recent': () => ['/projects/birds'],
    'project.current': () => null,
    'training.status': () => ({ runId: null, state: 'idle', last: null }),
    'models.list': () => [],
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

function typeInto(input: HTMLInputElement, value: string) {
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

describe('backend badge', () => {
  it('says GPU or CPU and which engine', async () => {
    for (const [kind, text] of [
      ['gpu', 'GPU · CUDA'],
      ['wasm', 'CPU · WebAssembly'],
      ['node', 'CPU · TensorFlow'],
    ] as const) {
      const el = target();
      const c = mount(BackendBadge, { target: el, props: { backend: backend(kind) } });
      await settle(1);
      expect(el.querySelector('[data-testid="backend-badge"]')!.textContent!.trim()).toBe(text);
      unmount(c);
    }
  });

  it('is always visible in the window, with why this backend when clicked', async () => {
    const { el } = await start(baseHandlers({ 'app.info': () => appInfo('gpu', false) }));
    const badge = el.querySelector<HTMLButtonElement>('[data-testid="backend-badge"]')!;
    expect(badge.textContent!.trim()).toBe('GPU · CUDA');
    badge.click();
    await settle(1);
    expect(el.textContent).toContain('graphics card');
  });
});

describe('theme', () => {
  it('follows the system until toggled, then cycles light → dark → system', async () => {
    localStorage.removeItem('refit.theme');
    const { el, app } = await start(baseHandlers());
    const root = document.documentElement;
    expect(app.theme.choice).toBe('system');
    expect(root.dataset.theme).toBe(app.theme.systemDark ? 'dark' : 'light');
    const toggle = el.querySelector<HTMLButtonElement>('button[aria-label^="Theme:"]')!;
    toggle.click();
    await settle(1);
    expect(root.dataset.theme).toBe('light');
    toggle.click();
    await settle(1);
    expect(root.dataset.theme).toBe('dark');
    expect(localStorage.getItem('refit.theme')).toBe('dark');
    expect(toggle.getAttribute('aria-label')).toBe('Theme: dark (click to change)');
    toggle.click();
    await settle(1);
    expect(app.theme.choice).toBe('system');
  });
});

describe('errors', () => {
  it('shows an engine error as a banner with what to do, and dismisses it', async () => {
    const { el, api } = await start(
      baseHandlers({
        'project.open': () => {
          throw new Error("EACCES: permission denied, mkdir '/root/refit'");
        },
      }),
    );
    expect(el.textContent).toContain('Open or create a project');
    expect(el.textContent).toContain('birds'); // recent projects
    typeInto(el.querySelector<HTMLInputElement>('#project-dir')!, '/root/refit');
    await settle(1);
    button(el, 'Create')!.click();
    await settle();
    expect(api.callsOf('project.open')).toEqual([{ dir: '/root/refit', create: true }]);
    const banner = el.querySelector<HTMLElement>('[data-testid="error-banner"]')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('Couldn’t create the project');
    expect(banner.textContent).toContain("EACCES: permission denied, mkdir '/root/refit'");
    expect(banner.textContent).toContain('What to do:');
    expect(banner.textContent).toContain('not allowed to read or write there');
    button(banner, 'Dismiss: Couldn’t create the project')!.click();
    await settle(1);
    expect(el.querySelector('[data-testid="error-banner"]')).toBeNull();
  });

  it('is never blank when the engine cannot be reached', async () => {
    const { el } = await start({
      'app.info': () => {
        throw new Error('Lost the connection to the Refit server.');
      },
    });
    expect(el.querySelector('[data-testid="error-banner"]')!.textContent).toContain('Couldn’t reach the Refit engine');
    expect(el.textContent).toContain('npm run serve');
  });

  it('catches a screen that fails to render in an error boundary, with a way back', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    const broken = { id: 'r', status: 'completed', history: [], metrics: { labels: ['a'], confusion: null, perClass: [], misclassified: [] } } as unknown as RunRecord;
    const { el, app } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', true),
        'project.current': () => emptyDataset,
        'runs.list': () => [{ id: 'r', created: '2025-01-01T00:00:00Z', status: 'completed', backbone: 'resnet18', mode: 'head', valAccuracy: 0.5, epochs: 1 }],
        'runs.get': () => broken,
      }),
    );
    app.go('results');
    await settle(8);
    const fatal = el.querySelector('[data-testid="fatal-error"]')!;
    expect(fatal).not.toBeNull();
    expect(fatal.textContent).toContain('Something went wrong in the results screen');
    expect(button(fatal as HTMLElement, 'Try again')).toBeDefined();
    // The rest of the window still works.
    expect(el.querySelector('nav')).not.toBeNull();
    button(el, 'Data')!.click();
    await settle(2);
    expect(el.querySelector('[data-testid="fatal-error"]')).toBeNull();
    expect(el.querySelector('h1')!.textContent).toBe('Data');
    expect(logged).toHaveBeenCalled();
    logged.mockRestore();
  });
});

describe('data screen', () => {
  it('adds a folder through the folder picker and shows classes, counts and problems', async () => {
    const view: DatasetView = {
      project: PROJECT,
      classes: [
        { name: 'birds', images: 35, folders: ['/data/photos5/birds'] },
        { name: 'fruit', images: 26, folders: ['/data/photos5/fruit'] },
      ],
      problems: [
        { file: '/data/photos5/birds/notes.txt', kind: 'not-image', reason: 'Not an image' },
        { file: '/data/photos5/fruit/broken.png', kind: 'corrupt', reason: 'Truncated PNG' },
        { file: '/data/photos5/fruit/empty.jpg', kind: 'empty', reason: 'Zero bytes' },
      ],
      warnings: ['Classes are imbalanced'],
      totalImages: 61,
    };
    const { el, api } = await start(
      baseHandlers({
        'app.info': () => appInfo('wasm', true),
        'project.current': () => emptyDataset,
        'fs.listDir': ({ dir }) => ({
          dir: dir ?? '/data',
          parent: dir ? '/data' : '/',
          entries: dir ? [] : [{ name: 'photos5', path: '/data/photos5', isDir: true }, { name: 'readme.txt', path: '/data/readme.txt', isDir: false }],
        }),
        'dataset.addFolders': () => view,
        'dataset.images': ({ className, offset }) => ({ className, total: 0, images: offset ? [] : [] }),
      }),
    );
    expect(el.querySelector('h1')!.textContent).toBe('Data');
    button(el, 'Add folder')!.click();
    await settle();
    const dialog = document.querySelector<HTMLElement>('[role="dialog"]')!;
    expect(dialog.textContent).toContain('photos5');
    expect(dialog.textContent).toContain('1 image directly in this folder');
    // Type a path and press Enter to go there.
    const path = dialog.querySelector<HTMLInputElement>('#folder-picker-path')!;
    typeInto(path, '/data/photos5');
    path.closest('form')!.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
    await settle();
    expect(api.callsOf('fs.listDir').at(-1)).toEqual({ dir: '/data/photos5' });
    button(dialog, 'Select this folder')!.click();
    await settle();
    expect(api.callsOf('dataset.addFolders')).toEqual([{ folders: ['/data/photos5'] }]);
    expect(document.querySelector('[role="dialog"]')).toBeNull();

    // Classes with counts, problems grouped by kind with reasons, warnings.
    const classList = el.querySelector('ul[aria-label="Classes"]')!;
    expect(Array.from(classList.querySelectorAll('.name')).map((n) => n.textContent)).toEqual(['birds', 'fruit']);
    expect(Array.from(classList.querySelectorAll('.count')).map((n) => n.textContent)).toEqual(['35', '26']);
    expect(el.textContent).toContain('61 images in 2 classes · 3 skipped');
    const problems = el.querySelector<HTMLElement>('[aria-labelledby="problems-heading"]')!;
    expect(Array.from(problems.querySelectorAll('summary .kind')).map((k) => k.textContent)).toEqual(['Damaged images', 'Empty files', 'Not images']);
    expect(problems.textContent).toContain('Truncated PNG');
    expect(problems.textContent).toContain('/data/photos5/birds/notes.txt');
    expect(problems.textContent).toContain('Classes are imbalanced');
  });
});
