// Errors as a person can act on them: what happened, and what to do about it.

export interface ShownError {
  id: number;
  /** What the user was doing: "Couldn't add the folder". */
  title: string;
  message: string;
  hint: string;
}

const HINTS: [RegExp, string][] = [
  [/lost the connection|could not connect|connection .*closed|websocket/i, 'Check that the Refit server (npm run serve) is still running; this page reconnects by itself. Reload the page if it does not.'],
  [/no project|project is (not )?open|open a project/i, 'Open or create a project first: use the project panel at the top of the Data screen.'],
  [/at least two|two classes|only one class/i, 'Add at least two classes with images on the Data screen, then try again.'],
  [/already running|in progress|busy/i, 'Wait for the current training to finish, or cancel it on the Train screen.'],
  [/no (finished|completed) run|no run|no trained/i, 'Train a model first on the Train screen; results, classification and export use a finished run.'],
  [/ENOENT|no such file|does not exist|not found/i, 'Check that the path exists and is spelled correctly (it is a path on the computer running Refit).'],
  [/EACCES|EPERM|permission|not permitted|read-only/i, 'Refit is not allowed to read or write there. Choose another folder or change its permissions.'],
  [/ENOSPC|no space/i, 'The disk is full. Free some space or choose a folder on another disk.'],
  [/out of memory|heap|allocation|OOM/i, 'The model did not fit in memory. Try a smaller batch size, a smaller input size or a smaller backbone.'],
  [/invalid request/i, 'Refit’s screen sent something the engine did not accept; this is a bug, please report it with the message above.'],
  [/too large|too big|exceeds/i, 'Use smaller files (at most 20 MB per image).'],
];

export function hintFor(message: string): string {
  for (const [pattern, hint] of HINTS) if (pattern.test(message)) return hint;
  return 'Try again. If it keeps happening, rescan the project (Data screen) or restart Refit.';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

let nextId = 1;
export function describeError(title: string, err: unknown): ShownError {
  const message = errorMessage(err);
  return { id: nextId++, title, message, hint: hintFor(message) };
}
