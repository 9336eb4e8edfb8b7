// Moving a project's folder somewhere else. On one file system it is a single rename. Across file
// systems the folder is copied to a hidden sibling of the destination, which is renamed into place
// only once the copy is complete; the old folder is removed last. A failure at any step leaves the
// old folder as it was (and removes the partial copy), so nothing is ever lost.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { RefitError } from '../api/errors';
import { errnoCode, fsErrorDetail } from './errors';

export interface MoveResult {
  /** The old folder could not be removed after a complete copy (the project is at `to`; this is a leftover). */
  leftBehind?: string;
}

/** Moves the folder `from` to `to` (absolute; `to` must not exist, or be an empty folder). */
export async function moveProjectFolder(from: string, to: string): Promise<MoveResult> {
  if (to === from) throw new Error(`The project is already in ${to}: choose another folder to move it to`);
  if (to.startsWith(from + path.sep)) throw new Error(`Cannot move the project into its own folder (${to} is inside ${from}): choose a folder outside it`);
  const parent = path.dirname(to);
  const parentInfo = await stat(parent).catch(() => null);
  if (!parentInfo?.isDirectory()) throw new RefitError('not-found', `Cannot move the project to ${to}: there is no folder ${parent}; make it first or choose another place`);
  const existing = await stat(to).catch(() => null);
  if (existing) {
    if (!existing.isDirectory()) throw new Error(`Cannot move the project to ${to}: a file of that name exists there; choose another name`);
    const entries = await readdir(to);
    if (entries.length > 0) {
      throw new RefitError('folder-not-empty', `Cannot move the project to ${to}: the folder is not empty (it holds ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); choose a new or empty folder`);
    }
    await rmdir(to); // an empty folder is replaced by the project's
  }
  try {
    await rename(from, to);
    return {};
  } catch (err) {
    if (errnoCode(err) !== 'EXDEV') {
      if (existing) await mkdir(to).catch(() => undefined); // put back the empty folder the user chose
      throw new Error(`Cannot move the project from ${from} to ${to}: ${fsErrorDetail(err)}; the project is still in ${from}`);
    }
  }
  // Another file system: copy, then swap into place, then remove the original.
  const staging = path.join(parent, `.refit-move-${randomBytes(4).toString('hex')}`);
  try {
    await cp(from, staging, { recursive: true, errorOnExist: true, force: false, preserveTimestamps: true, verbatimSymlinks: true });
    await rename(staging, to);
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`Cannot move the project from ${from} to ${to}: ${fsErrorDetail(err)}; the project is still in ${from}, unchanged`);
  }
  try {
    await rm(from, { recursive: true });
    return {};
  } catch {
    return { leftBehind: from };
  }
}
