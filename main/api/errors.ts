// The kinds of failure the UI gives its own "what to do" for. The engine throws a RefitError with a
// kind where it knows one; both transports carry it in the error reply ({message, kind?}), so a
// screen never has to read the message's words to know what happened.

export const ERROR_KINDS = [
  /** No project is open (open or create one). */
  'no-project',
  /** The folder given to project.open is not a Refit project (no project.json there). */
  'not-a-project',
  /** The folder chosen for a new project or an export holds other files. */
  'folder-not-empty',
  /** Classify/export need a trained model and there is none (or the run has none). */
  'no-model',
  /** The project has no usable images (or too few classes) for a run. */
  'no-images',
  /** A path that does not exist. */
  'not-found',
  /** Another run is in progress. */
  'busy',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === 'string' && (ERROR_KINDS as readonly string[]).includes(value);
}

/** An engine error whose kind the UI knows how to advise on. */
export class RefitError extends Error {
  override name = 'RefitError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The kind of anything thrown, when it is a RefitError (or carries a valid `kind`); never throws. */
export function errorKindOf(err: unknown): ErrorKind | undefined {
  try {
    const kind = (err as { kind?: unknown } | null)?.kind;
    return isErrorKind(kind) ? kind : undefined;
  } catch {
    return undefined;
  }
}
