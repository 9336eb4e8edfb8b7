// The open project and its dataset, for the engine service: opening or creating a project, the
// recent-projects list, adding folders, class edits, exclusions, the image pages and thumbnails of the
// Data screen, and the server-side folder listing. Changes to the project run one at a time, in order.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatasetView, DirListing, ImagePage, Params, ProjectView } from '../../api/contract';
import type { DatasetReport } from '../../api/dataset';
import { writeJsonAtomic } from '../atomic-fs';
import { errnoCode, fsErrorMessage } from '../errors';
import { entryKind, isHiddenOrSystemName, isImageFileName } from '../image-files';
import {
  addSources,
  cacheDir,
  excludeImage,
  includeImage,
  INDEX_FILE,
  openOrCreateProject,
  openProject,
  removeClass,
  renameClass,
  renameProject,
  scanProject,
  type Project,
} from '../project';
import { ScanIndex } from '../scan-index';
import { thumbnailDataUrl } from '../thumbnails';
import { moveProjectFolder } from '../project-move';
import { serialQueue } from './queue';
import { RefitError } from '../../api/errors';

const MAX_RECENT = 10;
const SCAN_PROGRESS_INTERVAL_MS = 100;

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
const byPath = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);

function isInside(file: string, folder: string): boolean {
  const prefix = folder.endsWith(path.sep) ? folder : folder + path.sep;
  return file.startsWith(prefix);
}

export interface ProjectSessionOptions {
  /** The recent-projects list file. */
  recentFile: string;
  onScanProgress: (progress: { done: number; total: number }) => void;
  /** Called when another project is opened (the classifier of the previous one is no longer wanted). */
  onProjectChanged: () => void;
}

export class ProjectSession {
  private project: Project | null = null;
  private report: DatasetReport | null = null;
  private hashes: Map<string, string> | null = null;
  /** Changes to the project (open, add folders, rescan, rename, remove, exclude), one at a time. */
  readonly queue = serialQueue();
  private readonly recentQueue = serialQueue();

  constructor(private readonly options: ProjectSessionOptions) {}

  require(): Project {
    if (!this.project) throw new RefitError('no-project', 'No project is open: open a project folder or create a new project first');
    return this.project;
  }

  /** The open project, if any. */
  get current(): Project | null {
    return this.project;
  }

  /** The last scan's usable images of `p` (none when another project is open meanwhile). */
  imagesOf(p: Project): DatasetReport['images'] {
    return (this.project === p ? this.report : null)?.images ?? [];
  }

  /** Images in the open project's last scan (0 when none is open or scanned). */
  get imageCount(): number {
    return this.project && this.report ? this.report.images.length : 0;
  }

  view(): ProjectView | null {
    return this.project ? this.projectView(this.project, this.report) : null;
  }

  dataset(): DatasetView | null {
    return this.project && this.report ? this.datasetView(this.project, this.report) : null;
  }

  private projectView(p: Project, r: DatasetReport | null): ProjectView {
    const counts = new Map(r?.classes.map((c) => [c.name, c.images]) ?? []);
    return {
      dir: p.dir,
      name: p.data.name,
      classes: p.data.classes.map((c) => ({ name: c.name, folders: [...c.folders], images: counts.get(c.name) ?? 0 })),
      exclusions: [...p.data.exclusions],
    };
  }

  private datasetView(p: Project, r: DatasetReport): DatasetView {
    return { project: this.projectView(p, r), classes: r.classes, problems: r.problems, warnings: r.warnings, totalImages: r.images.length };
  }

  /** Rescans the open project (only new or changed files are read), reporting throttled progress. Run it in `queue`. */
  async rescan(): Promise<DatasetView> {
    const p = this.require();
    let last = 0;
    const scanned = await scanProject(p, {
      onProgress: (done, total) => {
        const now = performance.now();
        if (done === 0 || done === total || now - last >= SCAN_PROGRESS_INTERVAL_MS) {
          last = now;
          this.options.onScanProgress({ done, total });
        }
      },
    });
    if (this.project === p) {
      this.report = scanned;
      this.hashes = null;
    }
    return this.datasetView(p, scanned);
  }

  open(params: Params<'project.open'>): Promise<DatasetView> {
    return this.queue(async () => {
      const dir = path.resolve(params.dir);
      let opened: Project;
      if (params.create) {
        opened = await openOrCreateProject(dir, { name: params.name?.trim() || path.basename(dir) || 'Refit project' });
      } else {
        const exists = await stat(path.join(dir, 'project.json')).then(() => true, () => false);
        if (!exists) {
          const folder = await stat(dir).then((s) => s.isDirectory(), () => null);
          if (folder === null) throw new RefitError('not-found', `There is no folder ${dir} (moved or deleted?): choose the project's folder again, or create a new project`);
          throw new RefitError('not-a-project', `${dir} is not a Refit project folder: choose the folder of a project, or create a new project there`);
        }
        opened = await openProject(dir);
      }
      this.options.onProjectChanged();
      this.project = opened;
      this.report = null;
      this.hashes = null;
      const view = await this.rescan();
      await this.addRecent(opened.dir);
      return view;
    });
  }

  /** A new name for the open project (project.json); its folder stays. */
  rename(name: string): Promise<DatasetView> {
    return this.change((p) => renameProject(p, name));
  }

  /**
   * Moves the open project's folder to `to` and keeps it open there (the caller makes sure no run is
   * training). The recent-projects list follows it. Nothing is lost on failure (project-move.ts).
   */
  move(to: string): Promise<DatasetView> {
    return this.queue(async () => {
      const from = this.require().dir;
      const target = path.resolve(to);
      const { leftBehind } = await moveProjectFolder(from, target);
      this.options.onProjectChanged(); // a loaded model's files were under the old path
      this.project = await openProject(target);
      this.report = null;
      this.hashes = null;
      const view = await this.rescan();
      await this.replaceRecent(from, target);
      if (leftBehind) view.warnings = [...view.warnings, `The project was moved to ${target}, but its old folder ${leftBehind} could not be removed: delete it yourself once you have checked the new one`];
      return view;
    });
  }

  /** Runs `change` on the open project in order with the others, then rescans. */
  change(change: (p: Project) => Promise<unknown>): Promise<DatasetView> {
    return this.queue(async () => {
      await change(this.require());
      return this.rescan();
    });
  }

  addFolders(folders: string[]): Promise<DatasetView> {
    return this.change((p) => addSources(p, folders.map((f) => path.resolve(f))));
  }

  renameClass(from: string, to: string): Promise<DatasetView> {
    return this.change((p) => renameClass(p, from, to));
  }

  removeClass(name: string): Promise<DatasetView> {
    return this.change((p) => removeClass(p, name));
  }

  setExcluded(file: string, excluded: boolean): Promise<DatasetView> {
    return this.change((p) => (excluded ? excludeImage(p, file) : includeImage(p, file)));
  }

  scan(): Promise<DatasetView> {
    return this.queue(() => this.rescan());
  }

  // ---- recent projects ----

  private async readRecent(): Promise<string[]> {
    try {
      const json = JSON.parse(await readFile(this.options.recentFile, 'utf8')) as { projects?: unknown };
      return Array.isArray(json.projects) ? json.projects.filter((d): d is string => typeof d === 'string') : [];
    } catch {
      return []; // missing or damaged: it is only a convenience list
    }
  }

  private addRecent(dir: string): Promise<void> {
    const file = this.options.recentFile;
    return this.recentQueue(async () => {
      const projects = [dir, ...(await this.readRecent()).filter((d) => d !== dir)].slice(0, MAX_RECENT);
      try {
        await mkdir(path.dirname(file), { recursive: true });
        await writeJsonAtomic(file, { format: 'refit-recent', version: 1, projects });
      } catch {
        // Not being able to remember the project (read-only config dir) must not stop opening it.
      }
    });
  }

  private replaceRecent(from: string, to: string): Promise<void> {
    return this.recentQueue(async () => {
      const recent = await this.readRecent();
      if (!recent.includes(from)) return;
      const projects = recent.map((d) => (d === from ? to : d)).filter((d, i, all) => all.indexOf(d) === i);
      await writeJsonAtomic(this.options.recentFile, { format: 'refit-recent', version: 1, projects }).catch(() => undefined);
    });
  }

  /** Recent projects that still exist, newest first. */
  async recent(): Promise<string[]> {
    const recent = await this.readRecent();
    const exists = await Promise.all(recent.map((d) => stat(path.join(d, 'project.json')).then(() => true, () => false)));
    return recent.filter((_, i) => exists[i]);
  }

  // ---- the Data screen ----

  async images(params: Params<'dataset.images'>): Promise<ImagePage> {
    const p = this.require();
    const source = p.data.classes.find((c) => c.name === params.className);
    if (!source) {
      throw new Error(`No class "${params.className}" in project ${p.data.name}; its classes are: ${p.data.classes.map((c) => c.name).join(', ') || 'none (add folders first)'}`);
    }
    if (!this.report) await this.scan();
    const included: ImagePage['images'] = (this.report?.images ?? [])
      .filter((i) => i.className === params.className)
      .map(({ file, hash, width, height }) => ({ file, hash, width, height, excluded: false }));
    // Excluded images stay visible in their class (so they can be brought back), with what the
    // scan index remembers about them.
    const excludedFiles = p.data.exclusions.filter((f) => source.folders.some((folder) => isInside(f, path.resolve(folder))));
    let excluded: ImagePage['images'] = [];
    if (excludedFiles.length > 0) {
      const index = await ScanIndex.load(path.join(p.dir, INDEX_FILE));
      excluded = excludedFiles.map((file) => {
        const facts = index.get(file);
        return { file, hash: facts?.hash ?? '', width: facts?.width ?? 0, height: facts?.height ?? 0, excluded: true };
      });
    }
    const all = [...included, ...excluded].sort(byPath);
    return { className: params.className, total: all.length, images: all.slice(params.offset, params.offset + params.limit) };
  }

  async thumbnail(params: Params<'dataset.thumbnail'>): Promise<{ dataUrl: string }> {
    const file = path.resolve(params.file);
    if (this.report && !this.hashes) this.hashes = new Map(this.report.images.map((i) => [i.file, i.hash]));
    const dataUrl = await thumbnailDataUrl(file, {
      size: params.size,
      ...(this.project ? { cacheDir: path.join(cacheDir(this.project.dir), 'thumbs') } : {}),
      ...(this.hashes?.has(file) ? { hash: this.hashes.get(file) } : {}),
    });
    return { dataUrl };
  }

  /** Folders and images in `dir` (default: the home folder), for the browser host's folder picker. */
  async listDir(params: Params<'fs.listDir'>): Promise<DirListing> {
    const dir = path.resolve(params.dir ?? os.homedir());
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const message = `${fsErrorMessage(err, dir, { noun: 'folder' })}; choose another folder`;
      throw errnoCode(err) === 'ENOENT' ? new RefitError('not-found', message) : new Error(message);
    }
    const listed: DirListing['entries'] = [];
    for (const entry of entries) {
      if (isHiddenOrSystemName(entry.name)) continue;
      const full = path.join(dir, entry.name);
      const { isDir, isFile } = await entryKind(full, entry).catch(() => ({ isDir: false, isFile: false }));
      if (isDir || (isFile && isImageFileName(entry.name))) listed.push({ name: entry.name, path: full, isDir });
    }
    // Folders first, then images; each in natural order ("img2" before "img10").
    listed.sort((a, b) => (a.isDir !== b.isDir ? (a.isDir ? -1 : 1) : byName(a.name, b.name)));
    const parent = path.dirname(dir);
    return { dir, parent: parent === dir ? null : parent, entries: listed };
  }

  /** A new, empty folder `name` in `parent` (never an existing one), and its listing. */
  async makeDir(params: Params<'fs.makeDir'>): Promise<DirListing> {
    const parent = path.resolve(params.parent);
    const dir = path.join(parent, params.name);
    if (path.dirname(dir) !== parent) throw new Error(`"${params.name}" is not a folder name: choose a name without / or \\`);
    try {
      await mkdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new Error(`${dir} already exists: choose another name, or open that folder`);
      const message = `Cannot make the folder ${dir}: ${fsErrorMessage(err, parent, { noun: 'folder' })}`;
      throw errnoCode(err) === 'ENOENT' ? new RefitError('not-found', message) : new Error(message);
    }
    return this.listDir({ dir });
  }
}
