// A single self-rewriting status line on stderr for terminals; silent when stderr is not a TTY.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressLine {
  private shown = false;
  private readonly enabled: boolean;

  constructor(enabled = true) {
    this.enabled = enabled && Boolean(process.stderr.isTTY);
  }

  update(text: string): void {
    if (!this.enabled) return;
    const width = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[K${text.length > width - 1 ? text.slice(0, width - 2) + '…' : text}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }

  /** Prints a permanent line (stdout) above the status line. */
  print(text: string): void {
    this.clear();
    console.log(text);
  }
}
