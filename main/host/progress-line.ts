// The CLI's one way to show progress: a single self-rewriting status line on stderr, drawn only
// when stderr is a terminal (and not with --json), cut to the terminal width, cleared before
// anything permanent is printed. Written through a CommandIO, so tests can watch it.
import type { CommandIO } from './commands/io';

/** Where a progress line is drawn: a CommandIO, or any fake with the same members. */
export type ProgressOutput = Pick<CommandIO, 'stderr' | 'stderrIsTTY'> & Partial<Pick<CommandIO, 'stdout' | 'columns'>>;

export interface ProgressLineOptions {
  /** false: draw nothing (e.g. with --json). Default true; a non-terminal stderr never shows it. */
  enabled?: boolean;
  /** Redraws closer together than this are skipped (a first draw, or one after clear(), never is). */
  minIntervalMs?: number;
  /** The clock, in milliseconds (tests). */
  now?: () => number;
}

/** What a command reports; formatProgress turns it into the line's text. */
export interface ProgressStatus {
  /** What is being done: "checking images", "predicting", "exporting: write". */
  label: string;
  /** Items done (images, files); shown as done/total when the total is known. */
  done?: number;
  /** Items in all, when known. */
  total?: number;
  /** 0..1, for work measured as a fraction instead of counted (ignored when done/total are given). */
  fraction?: number;
  /** Seconds since this work began: gives the rate and the ETA. */
  elapsedSeconds?: number;
  /** The rate's unit, e.g. "img/s"; the rate is shown only with a unit and a count. */
  rateUnit?: string;
}

const ERASE = '\r\x1b[K';

/** 42 → "42s", 200 → "3m20s", 4000 → "1h06m"; "?" when not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** "ETA 1m05s", from the time spent on a fraction of the work; undefined before there is a basis. */
export function formatEta(elapsedSeconds: number, fraction: number): string | undefined {
  if (!(fraction > 0 && fraction < 1) || !(elapsedSeconds > 0)) return undefined;
  return `ETA ${formatDuration((elapsedSeconds * (1 - fraction)) / fraction)}`;
}

/**
 * "predicting 12/40 (30%) · 3.4 img/s · ETA 8s"; "predicting 12 · 3.4 img/s" while the total is
 * unknown; "exporting: write 45% · ETA 2s" for fractional work.
 */
export function formatProgress(status: ProgressStatus): string {
  const { label, done, total, elapsedSeconds: elapsed = 0, rateUnit } = status;
  const counted = done !== undefined;
  const fraction = counted ? (total !== undefined && total > 0 ? Math.min(1, done / total) : undefined) : status.fraction;
  const percent = fraction !== undefined ? `${Math.floor(fraction * 100)}%` : undefined;
  let head = label;
  if (counted) head += total !== undefined ? ` ${done}/${total}${percent ? ` (${percent})` : ''}` : ` ${done}`;
  else if (percent) head += ` ${percent}`;
  const parts = [head];
  if (counted && rateUnit && elapsed > 0 && done > 0) parts.push(`${(done / elapsed).toFixed(1)} ${rateUnit}`);
  const eta = fraction !== undefined ? formatEta(elapsed, fraction) : undefined;
  if (eta) parts.push(eta);
  return parts.join(' · ');
}

/** `text` on one line of at most `width - 1` columns (the last column would wrap on some terminals). */
export function fitToWidth(text: string, width: number): string {
  const chars = [...text.replace(/[\r\n\t]+/g, ' ')];
  const max = Math.max(8, width) - 1;
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : chars.join('');
}

export class ProgressLine {
  /** Whether anything will be drawn: enabled and stderr is a terminal. */
  readonly active: boolean;
  private shown = false;
  private lastText = '';
  private lastDrawn = -Infinity;
  private clock: { label: string; started: number } | undefined;
  /** A throttled line, drawn when the interval is over unless something newer or clear() comes first. */
  private pending: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly minIntervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly out: ProgressOutput,
    options: ProgressLineOptions = {},
  ) {
    this.active = options.enabled !== false && out.stderrIsTTY;
    this.minIntervalMs = options.minIntervalMs ?? 100;
    this.now = options.now ?? (() => performance.now());
  }

  /** Draws `text` in place of the current line (throttled while the line is up). */
  update(text: string): void {
    this.draw(text, false);
  }

  private draw(text: string, force: boolean): void {
    if (!this.active) return;
    const line = fitToWidth(text, this.out.columns || 100);
    const t = this.now();
    if (this.shown && line === this.lastText) return;
    if (this.shown && !force && t - this.lastDrawn < this.minIntervalMs) {
      // Throttled, not dropped: the latest text still shows once the interval is over.
      this.pending = line;
      if (!this.timer) {
        this.timer = setTimeout(() => this.flushPending(), this.minIntervalMs - (t - this.lastDrawn));
        this.timer.unref?.();
      }
      return;
    }
    this.write(line, t);
  }

  private write(line: string, t: number): void {
    this.cancelPending();
    this.out.stderr(ERASE + line);
    this.shown = true;
    this.lastText = line;
    this.lastDrawn = t;
  }

  private flushPending(): void {
    this.timer = null;
    const line = this.pending;
    this.pending = null;
    if (line !== null && this.shown && line !== this.lastText) this.write(line, this.now());
  }

  private cancelPending(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
  }

  /**
   * Draws a status as formatProgress does, timing it from the first status with the same label
   * (a new label, e.g. the next export phase, restarts the clock for its rate and ETA, and is drawn
   * at once).
   */
  status(status: Omit<ProgressStatus, 'elapsedSeconds'>): void {
    if (!this.active) return;
    const t = this.now();
    const newLabel = this.clock?.label !== status.label;
    if (newLabel || !this.clock) this.clock = { label: status.label, started: t };
    const finished = status.done !== undefined && status.total !== undefined && status.done >= status.total;
    this.draw(formatProgress({ ...status, elapsedSeconds: (t - this.clock.started) / 1000 }), newLabel || finished);
  }

  /**
   * For counted work whose total may be known only later: `countTotal` (called only when the line is
   * active) counts the items beside the work, and the returned function draws done/total once the
   * count is in (done alone, with the rate, until then).
   */
  counter(label: string, countTotal?: () => Promise<number>, rateUnit = 'img/s'): (done: number) => void {
    if (!this.active) return () => undefined;
    let total: number | undefined;
    countTotal?.().then(
      (n) => (total = n),
      () => undefined, // no total: the line shows the count and the rate only
    );
    return (done) => this.status({ label, done, total, rateUnit });
  }

  /** Erases the line, if one is shown, so the next output starts on a clean line. */
  clear(): void {
    this.cancelPending();
    if (this.shown) this.out.stderr(ERASE);
    this.shown = false;
    this.lastText = '';
  }

  /** Prints a permanent line on stdout (above where the status line is drawn next). */
  print(text: string): void {
    this.clear();
    if (this.out.stdout) this.out.stdout(text + '\n');
    else process.stdout.write(text + '\n');
  }
}
