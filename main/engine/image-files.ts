// Expands files and folders into the image files they contain.
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FileProblem } from '../api/dataset';
import { errnoCode, firstLine } from './errors';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp', '.avif'] as const;

export function isImageFileName(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(name).toLowerCase());
}

const SYSTEM_NAMES = new Set(['thumbs.db', 'ehthumbs.db', 'desktop.ini', '$recycle.bin', 'system volume information', '__macosx', 'icon\r']);

/**
 * Files and folders that operating systems and archivers scatter around (.DS_Store, ._name
 * resource forks, Thumbs.db, desktop.ini, __MACOSX, …): never part of a dataset, skipped silently.
 */
export function isHiddenOrSystemName(name: string): boolean {
  return name.startsWith('.') || SYSTEM_NAMES.has(name.toLowerCase());
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface FolderWalk {
  /** Files with an image extension, in walk order. */
  images: string[];
  /** Other files that are not hidden/system files (the caller decides whether to report them). */
  otherFiles: string[];
  /** Folders that could not be read, symlink loops, broken links. */
  problems: FileProblem[];
}

export interface WalkOptions {
  /** Real paths of folders already searched; shared between walks so a folder is searched once. */
  seenDirs?: Set<string>;
  signal?: AbortSignal;
}

/**
 * Walks `root` recursively, entries sorted by name (code-point order), skipping hidden and system
 * files and folders. Symlinks are followed. A link back to a folder that contains it (a symlink
 * loop) is reported and not followed, as is a link that loops on itself; a folder reached a second
 * time by another way (two links to one folder) is searched only once, silently.
 */
export async function walkFolder(root: string, options: WalkOptions = {}): Promise<FolderWalk> {
  const out: FolderWalk = { images: [], otherFiles: [], problems: [] };
  const seenDirs = options.seenDirs ?? new Set<string>();

  const visit = async (dir: string, ancestors: string[]): Promise<void> => {
    options.signal?.throwIfAborted();
    let real: string;
    try {
      real = await realpath(dir);
    } catch (err) {
      out.problems.push(linkProblem(dir, err));
      return;
    }
    if (ancestors.includes(real)) {
      out.problems.push({ file: dir, kind: 'symlink-loop', reason: `Symbolic link loop: this leads back to ${real}, a folder that contains it; not followed` });
      return;
    }
    if (seenDirs.has(real)) return;
    seenDirs.add(real);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      out.problems.push({ file: dir, kind: 'unreadable', reason: `Cannot read this folder (${errnoCode(err) ?? firstLine(err)}); the images inside it were skipped` });
      return;
    }
    entries.sort((a, b) => byName(a.name, b.name));
    const chain = [...ancestors, real];
    for (const entry of entries) {
      if (isHiddenOrSystemName(entry.name)) continue;
      const full = path.join(dir, entry.name);
      let kind: EntryKind;
      try {
        kind = await entryKind(full, entry);
      } catch (err) {
        out.problems.push(linkProblem(full, err));
        continue;
      }
      const { isDir, isFile } = kind;
      if (isDir) await visit(full, chain);
      else if (isFile) (isImageFileName(entry.name) ? out.images : out.otherFiles).push(full);
    }
  };

  await visit(root, []);
  return out;
}

export interface EntryKind {
  isDir: boolean;
  isFile: boolean;
}

/** Whether a folder entry is (or, for a symbolic link, points to) a folder or a file; a broken link throws its stat error. */
export async function entryKind(full: string, entry: Dirent): Promise<EntryKind> {
  if (!entry.isSymbolicLink()) return { isDir: entry.isDirectory(), isFile: entry.isFile() };
  const target = await stat(full);
  return { isDir: target.isDirectory(), isFile: target.isFile() };
}

function linkProblem(file: string, err: unknown): FileProblem {
  const code = errnoCode(err);
  if (code === 'ELOOP') return { file, kind: 'symlink-loop', reason: 'Symbolic link loop: the link resolves to itself; not followed' };
  if (code === 'ENOENT') return { file, kind: 'missing', reason: 'Not found (or a symbolic link whose target does not exist)' };
  return { file, kind: 'unreadable', reason: `Cannot read (${code ?? firstLine(err)})` };
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/**
 * Image files under `inputs`, in a stable order: each input in turn; a folder is searched with
 * `walkFolder` (sorted, hidden and system files skipped, symlinks followed, each folder once) and
 * files whose extension is not an image extension are left out. Problems inside the tree are
 * skipped silently; use walkFolder to hear about them.
 *
 * A path given explicitly that is not a folder is returned as is — even when missing or not an
 * image — so that the caller reports an error for it instead of silently dropping what was asked
 * for. Duplicates are removed (first occurrence kept).
 */
export async function listImageFiles(inputs: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  const seenDirs = new Set<string>();
  for (const input of inputs) {
    const info = await statOrUndefined(input);
    if (info?.isDirectory()) for (const file of (await walkFolder(input, { seenDirs })).images) out.add(file);
    else out.add(input);
  }
  return [...out];
}
