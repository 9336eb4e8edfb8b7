/** The first line of an error's message (native libraries append long details below it). */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].replace(/^Error: /, '').trim();
}

/**
 * The wasm backend's heap is a 32-bit WebAssembly memory (at most 4 GiB): when a network's tensors do
 * not fit, Emscripten aborts or a kernel reads out of bounds. Both are reported as this.
 */
export function isWasmOutOfMemory(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /^Aborted\(|memory access out of bounds|Cannot enlarge memory|Out of memory|divide by zero/i.test(message);
}

export const WASM_OUT_OF_MEMORY =
  'the WebAssembly compute backend ran out of memory (its heap is limited to 4 GiB): ' +
  'use a smaller batch size or input size, head mode, or a machine with a GPU backend';

/** The errno code of a failed file-system call ('ENOENT', 'EACCES', …), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

const ERRNO_WORDS = new Map(Object.entries({
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOENT: 'not found',
  ENOTDIR: 'not a folder',
  EISDIR: 'a folder, not a file',
  ELOOP: 'symbolic link loop',
  ENAMETOOLONG: 'name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'input/output error (a failing disk or a lost network share?)',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'read-only file system',
}));

/** Why a file-system call failed, in words where the code is a common one ('permission denied'), else the code, else the message's first line. */
export function fsErrorReason(err: unknown): string {
  const code = errnoCode(err);
  return (code && ERRNO_WORDS.get(code)) || code || firstLine(err);
}

/** The reason with its code: 'permission denied (EACCES)', 'the disk is full (ENOSPC)'; else the message's first line (Node's names the code). */
export function fsErrorDetail(err: unknown): string {
  const code = errnoCode(err);
  const words = code && ERRNO_WORDS.get(code);
  return words ? `${words} (${code})` : firstLine(err);
}

/**
 * The message for a failed stat / readdir / open / readFile of `target`, naming it: '<Noun> not found:
 * /x' (or `missing`, when given), 'Not a folder: /x', 'Cannot read <noun> /x: permission denied (EACCES)'.
 */
export function fsErrorMessage(err: unknown, target: string, options: { noun?: string; missing?: string } = {}): string {
  const noun = options.noun ?? 'file';
  const Noun = noun[0].toUpperCase() + noun.slice(1);
  switch (errnoCode(err)) {
    case 'ENOENT':
      return options.missing ?? `${Noun} not found: ${target}`;
    case 'ENOTDIR':
      // readdir of a file, or a path through a file
      return noun === 'folder' ? `Not a folder: ${target}` : `${Noun} not found: ${target} (a part of its path is a file, not a folder)`;
    case 'EISDIR':
      return `${target} is a folder, not a file`;
    default:
      return `Cannot read ${noun} ${target}: ${fsErrorDetail(err)}`;
  }
}
