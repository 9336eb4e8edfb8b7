// Training: the backbones, the settings the person chose, and the live run (from 'training.event').
import type { AppState } from './app.svelte';
import type { EpochRecord, Events, ModelCard, ProgressEvent, RunStatus, TrainConfig, TrainMode } from '../types';
import { formatDuration } from '../lib/format';
import { DEFAULT_LEARNING_RATE, plannedEpochs, TRAIN_DEFAULTS, TRAIN_LIMITS } from '../../../main/api/train-config';

/** The engine's learning rate per mode when none is set. */
export const DEFAULT_LR = DEFAULT_LEARNING_RATE;

/** Each step of a run in plain words (the engine's phase names are for logs). */
export const PHASE_LABELS: Record<ProgressEvent['phase'], string> = {
  scan: 'Checking your images',
  load: 'Getting the model ready',
  extract: 'Preparing your images',
  train: 'Training',
  finetune: 'Training the network',
  evaluate: 'Measuring accuracy on held-out images',
  save: 'Saving the model',
};

/** Phases whose counts are of images (the training phases count image steps over all epochs instead). */
const COUNTED_PHASES: ReadonlySet<ProgressEvent['phase']> = new Set(['scan', 'extract', 'evaluate']);

/** "Preparing your images 42/168", "Training — epoch 2 of 10", "Getting the model ready". */
export function progressLabel(p: ProgressEvent): string {
  const step = PHASE_LABELS[p.phase] ?? p.phase;
  if (COUNTED_PHASES.has(p.phase) && p.total !== undefined && p.total > 0) return `${step} ${Math.min(p.done ?? 0, p.total)}/${p.total}`;
  if (p.epoch !== undefined && p.epochs) return `${step} — epoch ${p.epoch} of ${p.epochs}`;
  return step;
}

export interface Settings {
  backbone: string;
  mode: TrainMode;
  weights: 'imagenet' | 'none';
  epochs: number;
  /** null: the engine's default for the mode. */
  learningRate: number | null;
  batchSize: number;
  augment: boolean;
  valSplit: number;
  /** null: the backbone's input size. */
  inputSize: number | null;
  head: 'linear' | 'mlp';
  hidden: number;
  dropout: number;
  patience: number;
  classWeights: boolean;
  seed: number;
}

export function defaultSettings(): Settings {
  return {
    backbone: '',
    mode: TRAIN_DEFAULTS.mode,
    weights: 'imagenet',
    epochs: TRAIN_DEFAULTS.epochs,
    learningRate: null,
    batchSize: TRAIN_DEFAULTS.batchSize,
    augment: TRAIN_DEFAULTS.augment,
    valSplit: TRAIN_DEFAULTS.valSplit,
    inputSize: null,
    head: TRAIN_DEFAULTS.head,
    hidden: TRAIN_DEFAULTS.hidden,
    dropout: TRAIN_DEFAULTS.dropout,
    patience: TRAIN_DEFAULTS.patience,
    classWeights: TRAIN_DEFAULTS.classWeights,
    seed: TRAIN_DEFAULTS.seed,
  };
}

function clampInt(v: number, min: number, max: number, fallback: number): number {
  return Number.isFinite(v) ? Math.min(max, Math.max(min, Math.round(v))) : fallback;
}

/** The contract's TrainConfig from the form's settings (bad numbers fall back to defaults). */
export function toTrainConfig(s: Settings, model: ModelCard | undefined): TrainConfig {
  const d = defaultSettings();
  const hasImagenet = !!model?.weights.includes('imagenet');
  const config: TrainConfig = {
    backbone: s.backbone,
    weights: hasImagenet && s.weights === 'imagenet' ? 'imagenet' : 'none',
    mode: s.mode,
    head: s.head === 'mlp' ? { kind: 'mlp', hidden: clampInt(s.hidden, 1, TRAIN_LIMITS.hidden, d.hidden), dropout: Math.min(0.9, Math.max(0, Number(s.dropout) || 0)) } : { kind: 'linear' },
    epochs: clampInt(s.epochs, 1, 1000, d.epochs),
    batchSize: clampInt(s.batchSize, 1, TRAIN_LIMITS.batchSize, d.batchSize),
    valSplit: Math.min(0.9, Math.max(0.01, Number(s.valSplit) || d.valSplit)),
    seed: clampInt(s.seed, 0, TRAIN_LIMITS.seed, d.seed),
    augment: s.augment,
    patience: clampInt(s.patience, 1, 1000, d.patience),
    classWeights: s.classWeights,
  };
  if (s.learningRate !== null && Number.isFinite(s.learningRate) && s.learningRate > 0 && s.learningRate < 1) config.learningRate = s.learningRate;
  if (s.inputSize !== null && Number.isFinite(s.inputSize) && s.inputSize >= 32) config.inputSize = Math.round(s.inputSize);
  return config;
}

/**
 * Seconds until the epoch in progress ends. The engine's ETA is for the rest of the phase (its
 * remaining epochs at the phase's rate), so the epoch's share of it is what is left of this epoch.
 */
export function epochEtaSeconds(p: ProgressEvent): number | null {
  if (p.etaSeconds === undefined || p.epoch === undefined || !p.epochs || p.batch === undefined || !p.batches) return null;
  const leftInEpoch = Math.min(1, Math.max(0, 1 - p.batch / p.batches));
  const leftInPhase = Math.max(0, p.epochs - p.epoch) + leftInEpoch;
  return leftInPhase > 0 ? (p.etaSeconds * leftInEpoch) / leftInPhase : 0;
}

/** What the empty loss and accuracy charts say until a run's first epoch ends. */
export function firstPointNote(p: ProgressEvent | null): string {
  if (p && (p.phase === 'train' || p.phase === 'finetune') && p.epoch !== undefined) {
    const eta = epochEtaSeconds(p);
    return `The first point appears when epoch ${p.epoch} ends${eta !== null ? ` (ETA ${formatDuration(eta)})` : ''}.`;
  }
  if (!p) return 'The first point appears when epoch 1 ends.';
  const step = PHASE_LABELS[p.phase] ?? p.phase;
  const eta = p.etaSeconds !== undefined ? ` — this step ends in about ${formatDuration(p.etaSeconds)}` : '';
  return `The first point appears when epoch 1 ends, after ${step.charAt(0).toLowerCase()}${step.slice(1)}${eta}.`;
}

export type RunPhase = 'idle' | 'starting' | 'running' | 'cancelling';

export class TrainingState {
  models = $state<ModelCard[]>([]);
  modelsLoaded = $state(false);
  settings = $state<Settings>(defaultSettings());

  runId = $state<string | null>(null);
  /** The run this one continues from (Continue training), if any. */
  parentRunId = $state<string | null>(null);
  phase = $state<RunPhase>('idle');
  progress = $state<ProgressEvent | null>(null);
  history = $state<EpochRecord[]>([]);
  warnings = $state<string[]>([]);
  problems = $state<{ file: string; reason: string }[]>([]);
  /** How the last run ended (for the "finished" panel). */
  ended = $state<{ runId: string; status: RunStatus | 'failed'; error?: string } | null>(null);
  /** The run's planned epochs (from its config, or the largest count its progress reports), if known. */
  plannedEpochs = $state<number | null>(null);

  selectedModel = $derived(this.models.find((m) => m.id === this.settings.backbone));
  running = $derived(this.phase !== 'idle');
  /** For the empty charts while the run's first epoch is under way; null once there is a point. */
  chartNote = $derived(this.running && this.history.length === 0 ? firstPointNote(this.phase === 'running' ? this.progress : null) : null);

  private offs: (() => void)[] = [];

  constructor(private app: AppState) {
    const api = app.api;
    this.offs.push(
      api.on('training.event', (p) => this.onEvent(p)),
      api.on('training.ended', (p) => this.onEnded(p)),
    );
  }

  /** Why "Start training" is disabled, or null when it is not. */
  get blocker(): string | null {
    const app = this.app;
    if (!app.hasProject) return 'Open or create a project first.';
    if (!app.dataset || app.dataset.totalImages === 0) return 'Add images first: drop class folders on the Data screen.';
    if (app.usableClasses < 2) return 'Training needs at least two classes with images.';
    if (!this.settings.backbone) return 'Choose a backbone.';
    if (this.running) return 'A training run is in progress.';
    return null;
  }

  reset() {
    this.runId = null;
    this.parentRunId = null;
    this.phase = 'idle';
    this.progress = null;
    this.history = [];
    this.warnings = [];
    this.problems = [];
    this.ended = null;
    this.plannedEpochs = null;
  }

  private plan(epochs: number | undefined) {
    if (epochs && epochs > 0) this.plannedEpochs = Math.max(this.plannedEpochs ?? 0, epochs);
  }

  async loadModels() {
    const models = await this.app.attempt('Couldn’t list the backbones', () => this.app.api.call('models.list', {}));
    if (!models) return;
    this.models = models;
    this.modelsLoaded = true;
    if (!models.some((m) => m.id === this.settings.backbone)) {
      const preferred = models.find((m) => m.weights.includes('imagenet')) ?? models[0];
      if (preferred) this.chooseBackbone(preferred.id);
    }
  }

  chooseBackbone(id: string) {
    const model = this.models.find((m) => m.id === id);
    this.settings.backbone = id;
    this.settings.weights = model?.weights.includes('imagenet') ? 'imagenet' : 'none';
    this.settings.inputSize = null;
  }

  /** Picks up a run that was already going (page reload, another window). */
  async refreshStatus() {
    let status;
    try {
      status = await this.app.api.call('training.status', {});
    } catch {
      return;
    }
    if (status.state === 'idle' || !status.runId) {
      if (this.phase !== 'starting') this.phase = 'idle';
      return;
    }
    if (status.runId !== this.runId) this.plannedEpochs = null;
    this.runId = status.runId;
    this.phase = status.state;
    if (status.last?.type === 'progress') {
      this.progress = status.last;
      this.plan(status.last.epochs);
    }
    try {
      const record = await this.app.api.call('runs.get', { runId: status.runId });
      if (this.history.length === 0) this.history = record.history;
      this.parentRunId = record.parent ?? null;
      this.plan(plannedEpochs(record.config));
    } catch {
      /* the run file may not exist yet */
    }
  }

  async start() {
    if (this.blocker) return;
    const config = toTrainConfig(this.settings, this.selectedModel);
    this.reset();
    this.plannedEpochs = plannedEpochs(config);
    this.phase = 'starting';
    const started = await this.app.attempt('Couldn’t start training', () => this.app.api.call('training.start', { config }));
    if (!started) {
      this.phase = 'idle';
      return;
    }
    this.runId = started.runId;
    if (this.phase === 'starting') this.phase = 'running';
  }

  async cancel() {
    if (!this.running) return;
    this.phase = 'cancelling';
    const r = await this.app.attempt('Couldn’t cancel training', () => this.app.api.call('training.cancel', {}));
    if (!r) this.phase = 'running';
  }

  private onEvent({ runId, event }: Events['training.event']) {
    if (this.runId === null) {
      this.runId = runId;
      if (this.phase === 'idle') this.phase = 'running';
    } else if (runId !== this.runId) {
      return;
    }
    if (this.phase === 'starting') this.phase = 'running';
    switch (event.type) {
      case 'progress':
        this.progress = event;
        this.plan(event.epochs);
        break;
      case 'epoch':
        this.history = [...this.history, event.record];
        break;
      case 'warning':
        this.warnings = [...this.warnings, event.message];
        break;
      case 'problem':
        this.problems = [...this.problems, { file: event.file, reason: event.reason }];
        break;
      case 'error':
        this.app.report('Training failed', new Error(event.message), 'train');
        break;
      case 'result':
        break;
    }
  }

  private onEnded(payload: Events['training.ended']) {
    if (this.runId !== null && payload.runId !== this.runId) return;
    this.runId = payload.runId;
    this.phase = 'idle';
    this.ended = payload;
    if (payload.status === 'failed') {
      this.app.report('Training failed', new Error(payload.error ?? 'the training process stopped'), 'train');
    } else if (payload.status === 'cancelled') {
      this.app.notify('Training was cancelled. The project is unchanged; you can resume the run from the Results screen.');
    } else {
      this.app.notify(payload.status === 'early-stopped' ? 'Training finished early (validation stopped improving).' : 'Training finished.', {
        label: 'See results',
        screen: 'results',
      });
    }
    void this.app.results.load(payload.runId);
  }

  destroy() {
    for (const off of this.offs.splice(0)) off();
  }
}
