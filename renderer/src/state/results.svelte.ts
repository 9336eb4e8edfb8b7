// The project's runs: history, the selected run's record, the gallery a confusion-matrix cell opens.
import type { AppState } from './app.svelte';
import type { Misclassified, RunRecord, RunSummary } from '../types';

export interface GallerySelection {
  trueLabel: string;
  predictedLabel: string;
  /** Validation images counted in the cell. */
  count: number;
  /** The images we can show (the run lists its misclassified images; correct ones are only counted). */
  images: Misclassified[];
}

/** The images of one confusion-matrix cell. */
export function cellSelection(record: RunRecord, t: number, p: number): GallerySelection | null {
  const m = record.metrics;
  if (!m) return null;
  const trueLabel = m.labels[t];
  const predictedLabel = m.labels[p];
  const count = m.confusion[t]?.[p] ?? 0;
  const images = t === p ? [] : m.misclassified.filter((x) => x.trueLabel === trueLabel && x.predictedLabel === predictedLabel);
  return { trueLabel, predictedLabel, count, images };
}

export class ResultsState {
  runs = $state<RunSummary[]>([]);
  loaded = $state(false);
  selectedId = $state<string | null>(null);
  record = $state<RunRecord | null>(null);
  loadingRecord = $state(false);
  gallery = $state<GallerySelection | null>(null);

  constructor(private app: AppState) {}

  reset() {
    this.runs = [];
    this.loaded = false;
    this.selectedId = null;
    this.record = null;
    this.gallery = null;
  }

  /** Refreshes the run list and selects `runId` (default: keep the selection, else the newest). */
  async load(runId?: string) {
    if (!this.app.hasProject) return;
    const runs = await this.app.attempt('Couldn’t list the training runs', () => this.app.api.call('runs.list', {}));
    if (!runs) return;
    this.runs = [...runs].sort((a, b) => b.created.localeCompare(a.created));
    this.loaded = true;
    const pick = runId ?? (this.runs.some((r) => r.id === this.selectedId) ? this.selectedId : null) ?? this.runs.find((r) => r.status !== 'running')?.id ?? this.runs[0]?.id;
    if (pick) await this.select(pick);
  }

  async select(runId: string) {
    this.selectedId = runId;
    this.gallery = null;
    this.loadingRecord = true;
    const record = await this.app.attempt('Couldn’t load the run', () => this.app.api.call('runs.get', { runId }));
    if (this.selectedId === runId) {
      this.record = record ?? null;
      this.loadingRecord = false;
    }
  }

  openCell(t: number, p: number) {
    if (this.record) this.gallery = cellSelection(this.record, t, p);
  }

  closeGallery() {
    this.gallery = null;
  }

  /** The newest run that can be used to classify or export. */
  get usableRuns(): RunSummary[] {
    return this.runs.filter((r) => r.status === 'completed' || r.status === 'early-stopped');
  }

  async resume(record: RunRecord) {
    const started = await this.app.attempt('Couldn’t resume the run', () =>
      this.app.api.call('training.start', { config: record.config, resumeRunId: record.id }),
    );
    if (started) {
      this.app.training.reset();
      this.app.training.runId = started.runId;
      this.app.training.phase = 'running';
      this.app.training.history = [...record.history];
      this.app.go('train');
    }
  }
}
