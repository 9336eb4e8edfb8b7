// Where a command's output goes: the process by default, a capture in tests.
export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Progress lines are drawn on stderr only when it is a terminal. */
  stderrIsTTY: boolean;
  /** The terminal's width in columns, when stderr is a terminal; progress lines are cut to it. */
  columns?: number;
  setExitCode(code: number): void;
}

export const processIO: CommandIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  get stderrIsTTY() {
    return process.stderr.isTTY === true;
  },
  get columns() {
    return process.stderr.columns;
  },
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

/**
 * Runs `work` with an AbortSignal that Ctrl-C (SIGINT) fires; the handler is removed afterwards.
 * With `onSecond`, a second Ctrl-C calls it (e.g. to stop at once) instead of ending the process.
 */
export async function withInterrupt<T>(work: (signal: AbortSignal) => Promise<T>, options: { onSecond?: () => void } = {}): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    if (!controller.signal.aborted) controller.abort(new InterruptedError());
    else options.onSecond?.();
  };
  if (options.onSecond) process.on('SIGINT', onSigint);
  else process.once('SIGINT', onSigint);
  try {
    return await work(controller.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export class InterruptedError extends Error {
  constructor() {
    super('interrupted');
    this.name = 'InterruptedError';
  }
}

/** The exit code of a command stopped by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
