// What every CLI command shares: the global --backend option, option parsers, and the backend start-up.
import { InvalidArgumentError, type Command } from 'commander';
import { BACKENDS, type BackendName } from '../api/backends';

export function backendOption(value: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new InvalidArgumentError(`unknown backend "${value}"; expected one of ${BACKENDS.join(', ')}`);
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

/** Starts the TF.js backend chosen with the program's global --backend (or REFIT_BACKEND, or the best). */
export async function startBackend(command: Command) {
  const { initBackend } = await import('../engine/backend');
  const root = rootOf(command);
  return initBackend({ requested: root.opts<{ backend?: BackendName }>().backend });
}

function rootOf(command: Command): Command {
  let c = command;
  while (c.parent) c = c.parent;
  return c;
}
