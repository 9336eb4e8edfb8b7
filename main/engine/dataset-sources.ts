// Turns dropped (or passed) folders into classes.
//
// The rule, for each folder given:
//   - if it holds at least one image file directly, it is ONE class, named after the folder; its
//     sub-folders, at any depth, belong to that class too;
//   - otherwise each of its sub-folders is a class, named after the sub-folder, with the images found
//     recursively inside it (nested folders belong to their top class);
//   - a folder with neither images nor sub-folders is an error (there is nothing to import).
// Hidden and system entries (.DS_Store, ._x, Thumbs.db, __MACOSX, …) are ignored throughout. Classes
// with exactly the same name coming from different folders merge into one class listing all its
// folders (names are compared as written: "Cats" and "cats" are two classes).
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ClassSource } from '../api/dataset';
import { fsErrorMessage } from './errors';
import { entryKind, isHiddenOrSystemName, isImageFileName } from './image-files';

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function requireFolder(folder: string): Promise<void> {
  let info;
  try {
    info = await stat(folder);
  } catch (err) {
    throw new Error(fsErrorMessage(err, folder, { noun: 'folder' }));
  }
  if (!info.isDirectory()) throw new Error(`Not a folder: ${folder} (pass a folder of images, or a folder of class folders)`);
}

/** Sub-folders (symlinks to folders included) and whether any image file sits directly in `folder`. */
async function lookInside(folder: string): Promise<{ hasImages: boolean; subfolders: string[] }> {
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (err) {
    throw new Error(fsErrorMessage(err, folder, { noun: 'folder' }));
  }
  let hasImages = false;
  const subfolders: string[] = [];
  for (const entry of entries.sort((a, b) => byName(a.name, b.name))) {
    if (isHiddenOrSystemName(entry.name)) continue;
    const full = path.join(folder, entry.name);
    const { isDir, isFile } = await entryKind(full, entry).catch(() => ({ isDir: false, isFile: false }));
    if (isDir) subfolders.push(full);
    else if (isFile && isImageFileName(entry.name)) hasImages = true;
  }
  return { hasImages, subfolders };
}

function className(folder: string): string {
  return path.basename(folder) || folder;
}

/** Merges classes with the same name (first appearance decides the order); folders are de-duplicated. */
export function mergeClassSources(...lists: ClassSource[][]): ClassSource[] {
  const merged = new Map<string, ClassSource>();
  for (const list of lists) {
    for (const source of list) {
      const existing = merged.get(source.name);
      if (!existing) merged.set(source.name, { name: source.name, folders: [...new Set(source.folders)] });
      else for (const folder of source.folders) if (!existing.folders.includes(folder)) existing.folders.push(folder);
    }
  }
  return [...merged.values()];
}

/** Applies the folder rule above to `folders` (made absolute). Throws a clear Error for a path that is missing, not a folder, or empty. */
export async function classSourcesFromFolders(folders: readonly string[]): Promise<ClassSource[]> {
  if (folders.length === 0) throw new Error('No folders given');
  const found: ClassSource[] = [];
  for (const given of folders) {
    const folder = path.resolve(given);
    await requireFolder(folder);
    const { hasImages, subfolders } = await lookInside(folder);
    if (hasImages) found.push({ name: className(folder), folders: [folder] });
    else if (subfolders.length > 0) for (const sub of subfolders) found.push({ name: className(sub), folders: [sub] });
    else throw new Error(`No images in ${folder}: it holds no image files and no sub-folders`);
  }
  return mergeClassSources(found);
}
