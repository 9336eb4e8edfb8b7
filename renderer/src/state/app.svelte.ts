// The application's state: what is open, which screen shows, errors, the line to the engine.
// Screens get this object as a prop; the sub-states (training, results, classify) hang off it.
import type { ApiClient, ConnectionState } from '../api';
import type { AppInfo, DatasetView, Events, RefitApi } from '../types';
import type { ExtraEvents, ExtraResults } from '../../../main/api/electron-extras';
import { describeError, errorKind, errorMessage, type ShownError } from '../lib/errors';
import { baseName as baseNameOf } from '../lib/format';
import { ThemeState } from './theme.svelte';
import { ThumbnailCache } from './thumbs.svelte';
import { TrainingState } from './training.svelte';
import { ResultsState } from './results.svelte';
import { ClassifyState } from './classify.svelte';

export type Screen = 'data' | 'train' | 'results' | 'classify' | 'export';
/** Where an error banner belongs: a screen, or the project panel. */
export type Place = Screen | 'project';

export const SCREENS: { id: Screen; label: string; hint: string }[] = [
  { id: 'data', label: 'Data', hint: 'Your labelled images' },
  { id: 'train', label: 'Train', hint: 'Pick a starting network and train' },
  { id: 'results', label: 'Results', hint: 'How good is the model' },
  { id: 'classify', label: 'Classify', hint: 'Label new images' },
  { id: 'export', label: 'Export', hint: 'Save the model' },
];

export interface Notice {
  id: number;
  text: string;
  action?: { label: string; screen: Screen };
}

let noticeId = 1;

/** The desktop app's additions to the contract (main/api/electron-extras.ts), present only in Electron. */
interface ElectronExtras {
  call(method: 'dialog.chooseFolder', params: { title?: string; multiple?: boolean; create?: boolean }): Promise<ExtraResults['dialog.chooseFolder']>;
  on<E extends keyof ExtraEvents>(event: E, listener: (payload: ExtraEvents[E]) => void): () => void;
}

export class AppState {
  info = $state<AppInfo | null>(null);
  dataset = $state<DatasetView | null>(null);
  recent = $state<string[]>([]);
  screen = $state<Screen>('data');
  errors = $state<ShownError[]>([]);
  notices = $state<Notice[]>([]);
  /** What the engine is busy with for this window ("Scanning images…"), or null. */
  busy = $state<string | null>(null);
  scan = $state<Events['scan.progress'] | null>(null);
  connection = $state<ConnectionState>('open');
  /** True once app.info answered (or failed) the first time. */
  ready = $state(false);
  /** The project panel is open even though a project is (the "Switch project" button). */
  choosingProject = $state(false);
  /** The run the Export screen starts with ('' = the latest usable), set by Results' "Export this model". */
  exportRunId = $state('');
  /** Bumped when the image set may have changed (scan, add, rename, remove; not exclude). */
  generation = $state(0);

  readonly theme = new ThemeState();
  readonly thumbs: ThumbnailCache;
  readonly training: TrainingState;
  readonly results: ResultsState;
  readonly classify: ClassifyState;

  projectName = $derived(this.dataset?.project.name ?? this.info?.project?.name ?? null);
  hasProject = $derived(this.dataset !== null || !!this.info?.project);
  /** Classes with at least one usable image. */
  usableClasses = $derived(this.dataset ? this.dataset.classes.filter((c) => c.images > 0).length : 0);
  /** What the main area shows: the project panel, or a screen. */
  place = $derived<Place>(!this.hasProject || this.choosingProject ? 'project' : this.screen);
  /** The banners of this place, and those that belong everywhere (connection, background failures). */
  visibleErrors = $derived(this.errors.filter((e) => e.place === null || e.place === this.place));

  private unsubscribers: (() => void)[] = [];

  constructor(readonly api: RefitApi & Partial<Pick<ApiClient, 'onConnection' | 'transport'>>) {
    this.thumbs = new ThumbnailCache(api);
    this.training = new TrainingState(this);
    this.results = new ResultsState(this);
    this.classify = new ClassifyState(this);
    this.unsubscribers.push(api.on('scan.progress', (p) => (this.scan = p)));
    if (api.transport === 'electron') {
      const extras = api as unknown as ElectronExtras;
      this.unsubscribers.push(
        extras.on('project.opened', (view) => this.adoptProject(view)),
        extras.on('menu.command', ({ command }) => {
          if (command === 'export-model') {
            this.choosingProject = false;
            this.go('export');
          }
        }),
        extras.on('app.error', ({ message }) => this.report('Something failed', new Error(message), null)),
      );
    }
    if (api.onConnection) {
      let wasDown = false;
      this.unsubscribers.push(
        api.onConnection((state) => {
          this.connection = state;
          if (state === 'closed') wasDown = true;
          if (state === 'open' && wasDown) {
            wasDown = false;
            void this.refresh();
          }
        }),
      );
    }
  }

  get host(): 'electron' | 'browser' {
    return this.info?.host ?? (this.api.transport === 'electron' ? 'electron' : 'browser');
  }

  /**
   * The native folder dialog (Electron): the chosen folders, [] when cancelled, or null where there
   * is none (the browser host), in which case the caller shows the FolderPicker.
   */
  async chooseFolders(options: { title?: string; multiple?: boolean; create?: boolean } = {}): Promise<string[] | null> {
    if (this.api.transport !== 'electron') return null;
    const result = await this.attempt('Couldn’t show the folder dialog', () => (this.api as unknown as ElectronExtras).call('dialog.chooseFolder', options));
    return result ? result.paths : [];
  }

  /** First load: engine info, the open project, recent projects, training status. */
  async init() {
    await this.refresh();
    this.ready = true;
  }

  async refresh() {
    let info: AppInfo | undefined;
    try {
      info = await this.api.call('app.info', {});
    } catch (err) {
      this.report('Couldn’t reach the Refit engine', err, null);
      return;
    }
    this.info = info;
    const [current, recent] = await Promise.all([
      info.project ? this.api.call('project.current', {}).catch((err) => (this.report('Couldn’t load the project', err, null), null)) : Promise.resolve(null),
      this.api.call('project.recent', {}).catch(() => [] as string[]),
    ]);
    this.dataset = current ?? null;
    this.recent = recent;
    await this.training.refreshStatus();
  }

  /** Runs an engine call; a failure becomes an error banner (and `undefined`) instead of a throw. */
  async attempt<T>(title: string, fn: () => Promise<T>): Promise<T | undefined> {
    // The banner belongs where the action was started, even if the person moved on meanwhile.
    const place = this.place;
    try {
      return await fn();
    } catch (err) {
      this.report(title, err, place);
      return undefined;
    }
  }

  /**
   * Shows an error banner on `place` (default: where the person is now; null: on every screen).
   * Its "what to do" comes from the error's kind (lib/errors.ts).
   */
  report(title: string, err: unknown, place: Place | null = this.place) {
    const shown = describeError(title, err, place);
    // The same message twice in a row is shown once.
    if (this.errors.some((e) => e.title === shown.title && e.message === shown.message && e.place === shown.place)) return;
    this.errors = [...this.errors.slice(-4), shown];
  }

  dismissError(id: number) {
    this.errors = this.errors.filter((e) => e.id !== id);
  }

  notify(text: string, action?: Notice['action']) {
    const notice = { id: noticeId++, text, action };
    this.notices = [...this.notices.slice(-2), notice];
  }

  dismissNotice(id: number) {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  go(screen: Screen) {
    this.screen = screen;
  }

  private async withBusy<T>(label: string, fn: () => Promise<T>): Promise<T> {
    this.busy = label;
    try {
      return await fn();
    } finally {
      this.busy = null;
      this.scan = null;
    }
  }

  private setDataset(view: DatasetView, changed = true) {
    this.dataset = view;
    if (changed) this.generation++;
    if (this.info) this.info = { ...this.info, project: view.project };
  }

  async openProject(dir: string, create: boolean, name?: string): Promise<boolean> {
    const title = create ? 'Couldn’t create the project' : 'Couldn’t open the project';
    const view = await this.attempt(title, () =>
      this.withBusy(create ? 'Creating the project…' : 'Opening the project…', () =>
        this.api.call('project.open', { dir, ...(create ? { create: true } : {}), ...(name ? { name } : {}) }),
      ),
    );
    if (!view) return false;
    await this.adoptProject(view);
    return true;
  }

  /**
   * The first run without decisions: a new project for `folders` (the data), named after the first
   * one, in `parent` ("<home>/Refit projects"), then the folders added. A name already taken by
   * another folder gets " 2", " 3"… Returns whether the project was made.
   */
  async startFromData(folders: string[], parent: string): Promise<boolean> {
    if (folders.length === 0) return false;
    const base = baseNameOf(folders[0]) || 'My project';
    const sep = parent.includes('\\') && !parent.includes('/') ? '\\' : '/';
    let view: DatasetView | undefined;
    await this.withBusy('Creating the project…', async () => {
      for (let n = 1; n <= 20 && !view; n++) {
        const name = n === 1 ? base : `${base} ${n}`;
        try {
          view = await this.api.call('project.open', { dir: `${parent.replace(/[\\/]+$/, '')}${sep}${name}`, create: true, name });
        } catch (err) {
          if (errorKind(err) !== 'folder-not-empty') {
            this.report('Couldn’t create the project', err);
            return;
          }
        }
      }
    });
    if (!view) return false;
    await this.adoptProject(view);
    await this.addFolders(folders);
    return true;
  }

  /** A new name for the open project; answers the engine's message when refused (shown in the form), else null. */
  async renameProject(name: string): Promise<string | null> {
    try {
      this.setDataset(await this.api.call('project.rename', { name }), false);
      return null;
    } catch (err) {
      return errorMessage(err);
    }
  }

  /**
   * Moves the open project's folder to `to`; it stays open there. Answers the engine's message when
   * refused (nothing moved then), else null.
   */
  async moveProject(to: string): Promise<string | null> {
    try {
      const view = await this.withBusy('Moving the project…', () => this.api.call('project.move', { to }));
      this.setDataset(view, false);
      this.classify.clear();
      this.recent = await this.api.call('project.recent', {}).catch(() => this.recent);
      return null;
    } catch (err) {
      return errorMessage(err);
    }
  }

  /** A project was opened (here, or from the native menu). */
  private async adoptProject(view: DatasetView) {
    // What went wrong while choosing a project is over now.
    this.errors = this.errors.filter((e) => e.place !== 'project');
    this.setDataset(view);
    this.thumbs.clear();
    this.choosingProject = false;
    this.training.reset();
    this.results.reset();
    this.classify.clear();
    this.screen = 'data';
    this.recent = await this.api.call('project.recent', {}).catch(() => this.recent);
    void this.training.loadModels();
  }

  async addFolders(folders: string[]) {
    if (folders.length === 0) return;
    const view = await this.attempt('Couldn’t add the folder', () =>
      this.withBusy('Scanning images…', () => this.api.call('dataset.addFolders', { folders })),
    );
    if (view) {
      this.setDataset(view);
      void this.training.loadModels();
    }
  }

  async rescan() {
    const view = await this.attempt('Couldn’t rescan the images', () => this.withBusy('Scanning images…', () => this.api.call('dataset.scan', {})));
    if (view) this.setDataset(view);
  }

  async renameClass(from: string, to: string): Promise<boolean> {
    const view = await this.attempt(`Couldn’t rename “${from}”`, () => this.api.call('dataset.renameClass', { from, to }));
    if (view) this.setDataset(view);
    return !!view;
  }

  async removeClass(name: string) {
    const view = await this.attempt(`Couldn’t remove “${name}”`, () => this.api.call('dataset.removeClass', { name }));
    if (view) this.setDataset(view);
  }

  /** `regrid`: the image lists changed too (a duplicate's other copy becomes usable). */
  async setExcluded(file: string, excluded: boolean, regrid = false): Promise<boolean> {
    const view = await this.attempt(excluded ? 'Couldn’t exclude the image' : 'Couldn’t include the image', () =>
      this.api.call('dataset.setExcluded', { file, excluded }),
    );
    if (view) this.setDataset(view, regrid);
    return !!view;
  }

  destroy() {
    for (const off of this.unsubscribers.splice(0)) off();
    this.training.destroy();
    this.classify.destroy();
  }
}
