// Errors as a person can act on them: what happened, and what to do about it. The engine tags the
// failures it knows with a kind (main/api/errors.ts); each kind has its own advice. Errors without a
// kind fall back to a few patterns of the message, then to a general line.
import type { ErrorKind } from '../../../main/api/errors';

export type { ErrorKind };

export interface ShownError {
  id: number;
  /** What the user was doing: "Couldn't add the folder". */
  title: string;
  message: string;
  hint: string;
  kind?: ErrorKind;
  /** The screen that raised it (its banner shows only there), or null: shown everywhere. */
  place: string | null;
}

/** What to do, per kind of error. */
export const KIND_HINTS: Record<ErrorKind, string> = {
  'no-project': 'Open or create a project first: “Open project” (or “Switch project”) under the project name in the sidebar.',
  'not-a-project': 'Choose the folder of an existing project (it holds a project.json), or press “Create” to start a new project in this folder.',
  'folder-not-empty': 'Choose a new or empty folder: “Browse…” then “New folder” makes one. Refit never writes into a folder that holds other files.',
  'no-model': 'Train a model first on the Train screen; Classify and Export use a finished training run.',
  'no-images': 'Add folders of images on the Data screen (one folder per class), then start again.',
  'not-found': 'Check the path: the folder or file may have been moved, renamed or deleted (it is a path on the computer running Refit).',
  busy: 'Wait for the current training to finish, or cancel it on the Train screen.',
};

/** For errors that carry no kind (older engines, messages from elsewhere). */
const PATTERN_HINTS: [RegExp, string][] = [
  [/lost the connection|could not connect|connection .*closed|websocket/i, 'Check that the Refit server (npm run serve) is still running; this page reconnects by itself. Reload the page if it does not.'],
  [/no project is open|open a project/i, KIND_HINTS['no-project']],
  [/is not empty/i, KIND_HINTS['folder-not-empty']],
  [/at least two|two classes|only one class/i, 'Add at least two classes with images on the Data screen, then try again.'],
  [/already (running|in progress)/i, KIND_HINTS.busy],
  [/no (finished|completed) (training )?run|no trained model|no saved model/i, KIND_HINTS['no-model']],
  [/ENOENT|no such file|does not exist|not found|there is no folder/i, KIND_HINTS['not-found']],
  [/EACCES|EPERM|permission|not permitted|read-only/i, 'Refit is not allowed to read or write there. Choose another folder or change its permissions.'],
  [/ENOSPC|no space/i, 'The disk is full. Free some space or choose a folder on another disk.'],
  [/out of memory|heap|allocation|OOM/i, 'The model did not fit in memory. Try a smaller batch size, a smaller input size or a smaller starting network.'],
  [/invalid request/i, 'Refit’s screen sent something the engine did not accept; this is a bug, please report it with the message above.'],
  [/too large|too big|exceeds/i, 'Use smaller files (at most 20 MB per image).'],
];

export const GENERAL_HINT = 'Try again. If it keeps happening, note the message above and restart Refit; your project and trained models are safe on disk.';

export function hintFor(message: string, kind?: ErrorKind): string {
  if (kind && KIND_HINTS[kind]) return KIND_HINTS[kind];
  for (const [pattern, hint] of PATTERN_HINTS) if (pattern.test(message)) return hint;
  return GENERAL_HINT;
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

/** The kind an error from the engine carries (set by the transports), if any. */
export function errorKind(err: unknown): ErrorKind | undefined {
  const kind = (err as { kind?: unknown } | null | undefined)?.kind;
  return typeof kind === 'string' && kind in KIND_HINTS ? (kind as ErrorKind) : undefined;
}

let nextId = 1;
export function describeError(title: string, err: unknown, place: string | null = null): ShownError {
  const message = errorMessage(err);
  const kind = errorKind(err);
  return { id: nextId++, title, message, hint: hintFor(message, kind), ...(kind ? { kind } : {}), place };
}
