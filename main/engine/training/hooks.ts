// What a training phase reports and checks: events, cancellation, progress with an ETA.
import type { TrainEvent, TrainPhase } from '../../api/training';

export interface TrainHooks {
  emit: (event: TrainEvent) => void;
  signal?: AbortSignal;
}

export class Cancelled extends Error {
  constructor() {
    super('training cancelled');
  }
}

export class Progress {
  private start = performance.now();
  constructor(
    private readonly hooks: TrainHooks,
    private readonly phase: TrainPhase,
    private readonly total: number,
  ) {}

  report(done: number, extra: Partial<Extract<TrainEvent, { type: 'progress' }>> = {}): void {
    const seconds = (performance.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    this.hooks.emit({
      type: 'progress',
      phase: this.phase,
      fraction: this.total ? Math.min(1, done / this.total) : 1,
      ...(rate > 0 ? { etaSeconds: (this.total - done) / rate } : {}),
      done: Math.min(done, this.total),
      total: this.total,
      ...extra,
    });
  }
}

export function checkCancel(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Cancelled();
}

