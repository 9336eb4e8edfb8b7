// Reading Refit's own JSON files (project.json, run.json, refit.json): each carries a format tag and
// a version, so that a file that is not ours, one written by a newer Refit and one that is damaged
// each get their own clear message.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { fsErrorMessage } from './errors';

export interface VersionedFormat<T> {
  format: string;
  version: number;
  schema: z.ZodType<T>;
  /** What the file is, for messages: 'project', 'run', 'model'. */
  what: string;
}

export interface ReadOptions {
  /** The message when the file does not exist. */
  missing: string;
  /** Wraps "not ours" and "damaged" messages (e.g. to name the folder); default: as they are. */
  wrap?: (message: string) => Error;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`).join('; ');
}

/**
 * Checks parsed JSON against the format, first telling apart "not ours" (wrong format tag) and
 * "newer than this Refit" (higher version) from plain invalid content.
 */
export function validateVersioned<T>(file: string, value: unknown, spec: VersionedFormat<T>, wrap = (m: string) => new Error(m)): T {
  const record = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  if (!record || record.format !== spec.format) {
    const found = record && 'format' in record ? `its format is ${JSON.stringify(record.format)}` : 'it has no "format" field';
    throw wrap(`${file} is not a Refit ${spec.what} file: ${found}, expected "${spec.format}"`);
  }
  if (typeof record.version === 'number' && record.version > spec.version) {
    throw new Error(`${file} was written by a newer Refit (${spec.what} format version ${record.version}); this Refit reads version ${spec.version}. Update Refit to open it.`);
  }
  const parsed = spec.schema.safeParse(value);
  if (!parsed.success) throw wrap(`${file} is not a valid Refit ${spec.what} file: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Reads, parses and validates one of Refit's JSON files. */
export async function readVersionedJson<T>(file: string, spec: VersionedFormat<T>, options: ReadOptions): Promise<T> {
  const wrap = options.wrap ?? ((m: string) => new Error(m));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(fsErrorMessage(err, file, { missing: options.missing }));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw wrap(`${file} is corrupt (not valid JSON: ${(err as Error).message})`);
  }
  return validateVersioned(file, value, spec, wrap);
}
