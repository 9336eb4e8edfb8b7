// The project's runs: history, the selected run's record, the gallery a confusion-matrix cell opens.
import type { AppState } from './app.svelte';
import { plannedEpochs } from '../../../main/api/train-config';
import type { DatasetView, Misclassified, RunRecord, RunSummary } from '../types';
import { errorMessage } from '../lib/errors';

export interface GallerySelection {
  trueLabel: string;
  predictedLabel: string;
  /** Validation images counted in the cell. */
  count: number;
  /** The images we can show (all of them, except for a diagonal cell of a run recorded before runs kept their correct images). */
  images: Misclassified[];
  /** A diagonal cell of an older run, which counted its correct images without listing them. */
  unlisted?: boolean;
}

/** The images of one confusion-matrix cell. */
export function cellSelection(record: RunRecord, t: number, p: number): GallerySelection | null {
  const m = record.metrics;
  if (!m) return null;
  const trueLabel = m.labels[t];
  const predictedLabel = m.labels[p];
  const count = m.confusion[t]?.[p] ?? 0;
  if (t === p) {
    if (!m.correct) return { trueLabel, predictedLabel, count, images: [], unlisted: count > 0 };
    return { trueLabel, predictedLabel, count, images: m.correct.filter((x) => x.trueLabel === trueLabel) };
  }
  const images = m.misclassified.filter((x) => x.trueLabel === trueLabel && x.predictedLabel === predictedLabel);
  return { trueLabel, predictedLabel, count, images };
}

/** A finished run with a best checkpoint: training can continue from it (a new run, `parentRunId`). */
export function canContinue(record: RunRecord): boolean {
  return (record.status === 'completed' || record.status === 'early-stopped') && record.bestEpoch !== null;
}

export interface ClassChanges {
  /** Classes with images in the project that the run did not train on (they get new outputs). */
  added: string[];
  /** Classes of the run with no usable images in the project any more (dropped from a continued run). */
  removed: string[];
}

/**
 * How the project's current classes differ from a run's labels, as a continued run would see them
 * (only classes with usable images count, like the engine's). Null while the dataset is not loaded.
 */
export function classChanges(labels: readonly string[], dataset: DatasetView | null): ClassChanges | null {
  if (!dataset) return null;
  const current = dataset.classes.filter((c) => c.images > 0).map((c) => c.name);
  return {
    added: current.filter((name) => !labels.includes(name)).sort(),
    removed: labels.filter((label) => !current.includes(label)),
  };
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

  /**
   * Names a run (null: back to the name made from its facts). Answers the engine's message when the
   * name is refused (the form shows it beside the field), else null.
   */
  async rename(runId: string, name: string | null): Promise<string | null> {
    try {
      const summary = await this.app.api.call('runs.rename', { runId, name });
      this.runs = this.runs.map((r) => (r.id === runId ? summary : r));
      if (this.record?.id === runId) {
        const next = { ...this.record };
        if (summary.name === undefined) delete next.name;
        else next.name = summary.name;
        this.record = next;
      }
      return null;
    } catch (err) {
      return errorMessage(err);
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
    await this.startFrom(record, { resumeRunId: record.id }, 'Couldn’t resume the run');
  }

  /** Starts a new run from `record`'s best checkpoint on the project's current images. */
  async continueRun(record: RunRecord) {
    if (!canContinue(record)) return;
    await this.startFrom(record, { parentRunId: record.id }, 'Couldn’t continue training');
  }

  /**
   * Resume (the same run, its history kept) or continue (a new run) from `record`. The Train state is
   * set up before the request, so a second click is refused and early events land in the right run.
   */
  private async startFrom(record: RunRecord, from: { resumeRunId: string } | { parentRunId: string }, failure: string) {
    const training = this.app.training;
    if (training.running) return;
    training.reset();
    training.phase = 'starting';
    training.plannedEpochs = plannedEpochs(record.config);
    if ('resumeRunId' in from) training.history = [...record.history];
    else training.parentRunId = from.parentRunId;
    const started = await this.app.attempt(failure, () => this.app.api.call('training.start', { config: record.config, ...from }));
    if (!started) {
      training.reset();
      return;
    }
    training.runId = started.runId;
    if (training.phase === 'starting') training.phase = 'running';
    this.app.go('train');
  }
}
