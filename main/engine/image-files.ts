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
  /** Real paths of files already listed; shared between walks so a file reached by two paths counts once. */
  seenFiles?: Set<string>;
  /**
   * The walk's class boundary: real paths of this class's own folders, and of every other class's
   * folders by class name. A link into another class's folder, or up to a folder that contains one of
   * the own folders, is reported ('link-outside') and not followed, so no class takes (or, as a
   * cross-class duplicate, loses) the images of another.
   */
  boundary?: { own: readonly string[]; others: ReadonlyMap<string, string> };
  signal?: AbortSignal;
}

const isWithin = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);

/**
 * Walks `root` recursively, entries sorted by name (code-point order), skipping hidden and system
 * files and folders. Symlinks are followed within the class boundary (WalkOptions.boundary). A link
 * back to a folder that contains it (a symlink loop) is reported and not followed, as is a link that
 * loops on itself; a folder or file reached a second time by another way (two links to one folder) is
 * searched or listed only once, silently.
 */
export async function walkFolder(root: string, options: WalkOptions = {}): Promise<FolderWalk> {
  const out: FolderWalk = { images: [], otherFiles: [], problems: [] };
  const seenDirs = options.seenDirs ?? new Set<string>();
  const seenFiles = options.seenFiles ?? new Set<string>();
  const { boundary } = options;

  /** Why `real` (reached at `at`) must not be entered or listed, or undefined. */
  const outside = (at: string, real: string, what: 'folder' | 'file'): FileProblem | undefined => {
    if (!boundary || boundary.own.some((own) => isWithin(real, own))) return undefined;
    const container = boundary.own.find((own) => isWithin(own, real));
    if (container) {
      return { file: at, kind: 'link-outside', reason: `Link to ${real}, a folder that contains this class's folder ${container}; not followed (it would bring in every other class)` };
    }
    for (const [other, name] of boundary.others) {
      if (isWithin(real, other)) return { file: at, kind: 'link-outside', reason: `Link to ${what === 'file' ? 'a file' : 'a folder'} of class "${name}" (${real}); not followed: it stays in "${name}"` };
    }
    return undefined;
  };

  const visit = async (dir: string, ancestors: string[], viaLink = false): Promise<void> => {
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
    const away = viaLink ? outside(dir, real, 'folder') : undefined;
    if (away) {
      out.problems.push(away);
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
    const dirReal = real;
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
      if (isDir) await visit(full, chain, viaLink || entry.isSymbolicLink());
      else if (isFile) {
        // A file is listed once by its real path; a link to a file in another class stays there.
        const real = entry.isSymbolicLink() ? await realpath(full).catch(() => full) : path.join(dirReal, entry.name);
        const away = entry.isSymbolicLink() || viaLink ? outside(full, real, 'file') : undefined;
        if (away) out.problems.push(away);
        else if (!seenFiles.has(real)) {
          seenFiles.add(real);
          (isImageFileName(entry.name) ? out.images : out.otherFiles).push(full);
        }
      }
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
