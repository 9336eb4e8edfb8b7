// Expands files and folders into the image files they contain.
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp', '.avif'] as const;

export function isImageFileName(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(name).toLowerCase());
}

const isHidden = (name: string) => name.startsWith('.');
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/**
 * Image files under `inputs`, in a stable order: each input in turn; a folder is searched
 * recursively with entries sorted by name (code-point order), skipping hidden files and folders
 * (names starting with '.') and files whose extension is not an image extension.
 * Symlinks are followed; a folder reached twice (a symlink loop, or two links to one folder) is
 * searched once.
 *
 * A path given explicitly that is not a folder is returned as is — even when missing or not an
 * image — so that the caller reports an error for it instead of silently dropping what was asked
 * for. Duplicates are removed (first occurrence kept).
 */
export async function listImageFiles(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const seenFiles = new Set<string>();
  const seenDirs = new Set<string>();
  const push = (file: string) => {
    if (!seenFiles.has(file)) {
      seenFiles.add(file);
      out.push(file);
    }
  };

  const walk = async (dir: string): Promise<void> => {
    const real = await realpath(dir).catch(() => undefined);
    if (!real || seenDirs.has(real)) return;
    seenDirs.add(real);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folder inside a tree: skip it rather than fail the whole listing
    }
    entries.sort((a, b) => byName(a.name, b.name));
    for (const entry of entries) {
      if (isHidden(entry.name)) continue;
      const full = path.join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const target = await statOrUndefined(full);
        isDir = !!target?.isDirectory();
        isFile = !!target?.isFile();
      }
      if (isDir) await walk(full);
      else if (isFile && isImageFileName(entry.name)) push(full);
    }
  };

  for (const input of inputs) {
    const info = await statOrUndefined(input);
    if (info?.isDirectory()) await walk(input);
    else push(input);
  }
  return out;
}
