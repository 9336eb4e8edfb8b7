// Classify new images: uploads (browser) or paths (Electron), results with thumbnails, filters.
import type { AppState } from './app.svelte';
import type { ClassifyRow, Events } from '../types';
import { filterRows, labelsOf, resultsCsv, type ResultRow } from '../lib/classify';
import { fileToBase64, isImageFile, pathForFile } from '../lib/files';
import { downloadText } from '../lib/csv';
import { GradCamMaps, type GradCamSource } from './grad-cam.svelte';
import type { GradCamRow } from '../../../main/api/grad-cam';

const MAX_BYTES = 20 * 1024 * 1024;
/** Per message: at most this many images and about this many bytes of base64. */
const BATCH_IMAGES = 32;
const BATCH_BYTES = 12 * 1024 * 1024;

let rowId = 1;

function objectUrl(file: File): string | null {
  try {
    return URL.createObjectURL(file);
  } catch {
    return null;
  }
}

let tagSeq = 1;

/** A classify request in flight whose rows arrive as 'classify.progress' events. */
interface Stream {
  tag: string;
  /** Images counted as done before this request (an upload goes in several requests). */
  base: number;
  /** The count to show, when the caller knows it (files dropped); else the engine's (a folder's images). */
  total: number | null;
  /** Rows already shown, by file, so that the reply adds only the others. */
  shown: Map<string, number>;
  thumb: (file: string) => string | null;
  /** Thumbnails come from the engine (files on its disk that this page has no File for). */
  engineThumbs: boolean;
}

export interface Working {
  /** 'loading': the model is being loaded; 'classifying': images are being classified. */
  stage: 'loading' | 'classifying';
  done: number;
  /** Images in all; null until the engine has counted a folder's images. */
  total: number | null;
}

export class ClassifyState {
  rows = $state<ResultRow[]>([]);
  label = $state('');
  lowConfidenceOnly = $state(false);
  threshold = $state(0.6);
  /** Run to classify with; '' = the latest finished run. */
  runId = $state('');
  working = $state<Working | null>(null);
  /** "Show where the model looks": Grad-CAM maps over the results. */
  showHeat = $state(false);
  readonly maps: GradCamMaps;
  /** Uploaded files by their thumbnail's object URL: their maps need the bytes sent again. */
  private uploaded = new Map<string, File>();

  visible = $derived(filterRows(this.rows, { label: this.label, lowConfidenceOnly: this.lowConfidenceOnly, threshold: this.threshold }));
  labels = $derived(labelsOf(this.rows));

  private stream: Stream | null = null;
  private readonly off: () => void;

  constructor(private app: AppState) {
    this.off = app.api.on('classify.progress', (p) => this.onProgress(p));
    this.maps = new GradCamMaps(app.api);
  }

  /** How a row's image reaches the engine for its map: by path, or sent again (an upload). */
  private heatSource(row: ResultRow): GradCamSource | null {
    if (row.error) return null;
    const file = row.thumb ? this.uploaded.get(row.thumb) : undefined;
    return file ? { key: row.thumb!, name: row.file, blob: file } : { key: row.file, path: row.file };
  }

  /** Asks for the maps of `rows` (those on screen) that are not there yet. */
  explain(rows: readonly ResultRow[]) {
    const sources = rows.map((r) => this.heatSource(r)).filter((s): s is GradCamSource => s !== null);
    void this.maps.want({ runId: this.runId }, sources);
  }

  heatOf(row: ResultRow): GradCamRow | null {
    const source = this.heatSource(row);
    return source ? (this.maps.get({ runId: this.runId }, source.key) ?? null) : null;
  }

  destroy() {
    this.off();
  }

  private runParam() {
    return this.runId ? { runId: this.runId } : {};
  }

  private addRows(rows: ClassifyRow[], thumbs: (string | null)[]) {
    this.rows = [
      ...this.rows,
      ...rows.map((r, i) => ({ id: rowId++, file: r.file, thumb: thumbs[i] ?? null, top: r.top, ...(r.error ? { error: r.error } : {}) })),
    ];
  }

  private show(rows: ClassifyRow[], stream: Stream) {
    if (rows.length === 0) return;
    this.addRows(rows, rows.map((r) => stream.thumb(r.file)));
    // Thumbnails of files on the engine's disk come from the engine.
    if (stream.engineThumbs) this.app.thumbs.want(rows.filter((r) => !r.error).map((r) => r.file));
  }

  /** Rows as the engine computes them, and the count so far. */
  private onProgress(p: Events['classify.progress']) {
    const stream = this.stream;
    if (!stream || p.tag !== stream.tag) return;
    for (const r of p.rows) stream.shown.set(r.file, (stream.shown.get(r.file) ?? 0) + 1);
    this.show(p.rows, stream);
    if (this.working) {
      const total = stream.total ?? (p.stage === 'classifying' ? stream.base + p.total : null);
      this.working = { stage: p.stage, done: stream.base + p.done, total };
    }
  }

  /** One classify request, its rows shown as they come; the reply adds what was not streamed. */
  private async request(
    call: (tag: string) => Promise<ClassifyRow[]>,
    options: { thumb: (file: string) => string | null; total: number | null; engineThumbs?: boolean },
  ): Promise<ClassifyRow[] | undefined> {
    const stream: Stream = {
      tag: `classify-${Date.now().toString(36)}-${tagSeq++}`,
      base: this.working?.done ?? 0,
      total: options.total,
      shown: new Map(),
      thumb: options.thumb,
      engineThumbs: options.engineThumbs ?? false,
    };
    this.stream = stream;
    try {
      const rows = await this.app.attempt('Couldn’t classify the images', () => call(stream.tag));
      if (!rows) return undefined;
      const rest = rows.filter((r) => {
        const n = stream.shown.get(r.file) ?? 0;
        if (n > 0) stream.shown.set(r.file, n - 1);
        return n === 0;
      });
      this.show(rest, stream);
      return rows;
    } finally {
      if (this.stream === stream) this.stream = null;
    }
  }

  /**
   * Classifies dropped or chosen files. In Electron, files with a path on disk go by path
   * (`classify.files`); the others are read and uploaded (`classify.upload`).
   */
  async classifyFiles(files: File[]) {
    const images = files.filter(isImageFile);
    const skipped = files.length - images.length;
    if (skipped > 0) this.app.notify(`${skipped} file${skipped === 1 ? ' is' : 's are'} not an image and ${skipped === 1 ? 'was' : 'were'} skipped.`);
    if (images.length === 0) return;
    const byPath: { file: File; path: string }[] = [];
    const upload: File[] = [];
    for (const f of images) {
      const p = pathForFile(f);
      if (p) byPath.push({ file: f, path: p });
      else upload.push(f);
    }
    this.working = { stage: 'loading', done: 0, total: images.length };
    try {
      if (byPath.length > 0) {
        const thumbByPath = new Map(byPath.map((x) => [x.path, objectUrl(x.file)]));
        const rows = await this.request((tag) => this.app.api.call('classify.files', { paths: byPath.map((x) => x.path), topK: 3, tag, ...this.runParam() }), {
          thumb: (file) => thumbByPath.get(file) ?? null,
          total: images.length,
        });
        if (!rows) return;
        this.working = { stage: 'classifying', done: byPath.length, total: images.length };
      }
      await this.upload(upload, images.length);
    } finally {
      this.working = null;
    }
  }

  private async upload(files: File[], total: number) {
    let i = 0;
    while (i < files.length) {
      const batch: File[] = [];
      let bytes = 0;
      const tooBig: ClassifyRow[] = [];
      while (i < files.length && batch.length < BATCH_IMAGES && (batch.length === 0 || bytes + files[i].size * 1.37 <= BATCH_BYTES)) {
        const f = files[i++];
        if (f.size > MAX_BYTES) tooBig.push({ file: f.name, top: [], error: 'Too large to upload (over 20 MB)' });
        else {
          batch.push(f);
          bytes += f.size * 1.37;
        }
      }
      if (tooBig.length) {
        this.addRows(tooBig, []);
        if (this.working) this.working = { ...this.working, done: this.working.done + tooBig.length };
      }
      if (batch.length === 0) continue;
      const payload = await Promise.all(batch.map(async (f) => ({ name: f.name, data: await fileToBase64(f) })));
      // Thumbnails by name, in order (two dropped files may share a name).
      const urls = new Map<string, (string | null)[]>();
      for (const f of batch) {
        const url = objectUrl(f);
        urls.set(f.name, [...(urls.get(f.name) ?? []), url]);
        if (url) this.uploaded.set(url, f);
      }
      const base = this.working?.done ?? 0;
      const rows = await this.request((tag) => this.app.api.call('classify.upload', { images: payload, topK: 3, tag, ...this.runParam() }), {
        thumb: (file) => urls.get(file)?.shift() ?? null,
        total,
      });
      if (!rows) return;
      if (this.working) this.working = { stage: 'classifying', done: base + batch.length, total };
    }
  }

  /** Classifies folders or files on the engine's disk (paths); the engine counts a folder's images. */
  async classifyPaths(paths: string[]) {
    if (paths.length === 0) return;
    this.working = { stage: 'loading', done: 0, total: null };
    try {
      await this.request((tag) => this.app.api.call('classify.files', { paths, topK: 3, tag, ...this.runParam() }), {
        thumb: () => null,
        total: null,
        engineThumbs: true,
      });
    } finally {
      this.working = null;
    }
  }

  clear() {
    for (const row of this.rows) if (row.thumb?.startsWith('blob:')) URL.revokeObjectURL(row.thumb);
    this.rows = [];
    this.label = '';
    this.uploaded.clear();
    this.maps.clear();
  }

  csv(): string {
    return resultsCsv(this.visible);
  }

  saveCsv() {
    downloadText(`refit-classified-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.csv`, this.csv());
  }
}
