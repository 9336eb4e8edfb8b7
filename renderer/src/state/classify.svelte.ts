// Classify new images: uploads (browser) or paths (Electron), results with thumbnails, filters.
import type { AppState } from './app.svelte';
import type { ClassifyRow } from '../types';
import { filterRows, labelsOf, resultsCsv, type ResultRow } from '../lib/classify';
import { fileToBase64, isImageFile, pathForFile } from '../lib/files';
import { downloadText } from '../lib/csv';

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

export class ClassifyState {
  rows = $state<ResultRow[]>([]);
  label = $state('');
  lowConfidenceOnly = $state(false);
  threshold = $state(0.6);
  /** Run to classify with; '' = the latest finished run. */
  runId = $state('');
  working = $state<{ done: number; total: number } | null>(null);

  visible = $derived(filterRows(this.rows, { label: this.label, lowConfidenceOnly: this.lowConfidenceOnly, threshold: this.threshold }));
  labels = $derived(labelsOf(this.rows));

  constructor(private app: AppState) {}

  private runParam() {
    return this.runId ? { runId: this.runId } : {};
  }

  private addRows(rows: ClassifyRow[], thumbs: (string | null)[]) {
    this.rows = [
      ...this.rows,
      ...rows.map((r, i) => ({ id: rowId++, file: r.file, thumb: thumbs[i] ?? null, top: r.top, ...(r.error ? { error: r.error } : {}) })),
    ];
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
    this.working = { done: 0, total: images.length };
    try {
      if (byPath.length > 0) {
        const rows = await this.app.attempt('Couldn’t classify the images', () =>
          this.app.api.call('classify.files', { paths: byPath.map((x) => x.path), topK: 3, ...this.runParam() }),
        );
        if (!rows) return;
        const thumbByPath = new Map(byPath.map((x) => [x.path, objectUrl(x.file)]));
        this.addRows(rows, rows.map((r) => thumbByPath.get(r.file) ?? null));
        this.working = { done: byPath.length, total: images.length };
      }
      await this.upload(upload);
    } finally {
      this.working = null;
    }
  }

  private async upload(files: File[]) {
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
      if (tooBig.length) this.addRows(tooBig, []);
      if (batch.length === 0) continue;
      const payload = await Promise.all(batch.map(async (f) => ({ name: f.name, data: await fileToBase64(f) })));
      const rows = await this.app.attempt('Couldn’t classify the images', () =>
        this.app.api.call('classify.upload', { images: payload, topK: 3, ...this.runParam() }),
      );
      if (!rows) return;
      this.addRows(rows, batch.map(objectUrl));
      if (this.working) this.working = { done: this.working.done + batch.length + tooBig.length, total: this.working.total };
    }
  }

  /** Classifies folders or files on the engine's disk (paths). */
  async classifyPaths(paths: string[]) {
    if (paths.length === 0) return;
    this.working = { done: 0, total: paths.length };
    try {
      const rows = await this.app.attempt('Couldn’t classify the images', () => this.app.api.call('classify.files', { paths, topK: 3, ...this.runParam() }));
      if (!rows) return;
      this.addRows(rows, []);
      // Thumbnails of files on the engine's disk come from the engine.
      this.app.thumbs.want(this.rows.filter((r) => !r.thumb && !r.error).map((r) => r.file));
    } finally {
      this.working = null;
    }
  }

  clear() {
    for (const row of this.rows) if (row.thumb?.startsWith('blob:')) URL.revokeObjectURL(row.thumb);
    this.rows = [];
    this.label = '';
  }

  csv(): string {
    return resultsCsv(this.visible);
  }

  saveCsv() {
    downloadText(`refit-classified-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.csv`, this.csv());
  }
}
