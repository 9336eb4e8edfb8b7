// Files and folders coming from the desktop: drag and drop, file inputs, Electron paths.

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'bmp', 'avif'];
export const IMAGE_ACCEPT = 'image/*,' + IMAGE_EXTENSIONS.map((e) => `.${e}`).join(',');

export function isImageName(name: string): boolean {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  return IMAGE_EXTENSIONS.includes(ext);
}

export function isImageFile(file: File): boolean {
  return file.type.startsWith('image/') || isImageName(file.name);
}

/** Absolute path of a dropped File in Electron (preload's webUtils); null in a browser. */
export function pathForFile(file: File): string | null {
  try {
    const p = window.refitFiles?.pathForFile?.(file);
    return p ? p : null;
  } catch {
    return null;
  }
}

// The File and Directory Entries API, as much of it as we use (not in TypeScript's DOM lib everywhere).
interface Entry {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  fullPath: string;
}
interface FileEntry extends Entry {
  file(ok: (f: File) => void, fail: (e: unknown) => void): void;
}
interface DirEntry extends Entry {
  createReader(): { readEntries(ok: (entries: Entry[]) => void, fail: (e: unknown) => void): void };
}

async function readDir(dir: DirEntry): Promise<Entry[]> {
  const reader = dir.createReader();
  const all: Entry[] = [];
  // readEntries returns at most ~100 entries per call.
  for (;;) {
    const batch = await new Promise<Entry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

async function walk(entry: Entry, out: { file: File; relativePath: string }[], limit: number): Promise<void> {
  if (out.length >= limit) return;
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileEntry).file(ok, fail));
    out.push({ file, relativePath: entry.fullPath.replace(/^\//, '') });
  } else if (entry.isDirectory) {
    for (const child of await readDir(entry as DirEntry)) await walk(child, out, limit);
  }
}

/** One top-level thing that was dropped. */
export interface DroppedItem {
  name: string;
  isDirectory: boolean;
  /** Absolute path when the host can tell (Electron); null in a browser. */
  path: string | null;
  file: File | null;
  entry: Entry | null;
}

/**
 * The top-level items of a drop. Must run synchronously inside the drop handler: the browser empties
 * the DataTransfer once the event is over (the entries stay usable).
 */
export function droppedItems(dt: DataTransfer): DroppedItem[] {
  const out: DroppedItem[] = [];
  const items = Array.from(dt.items ?? []).filter((i) => i.kind === 'file');
  if (items.length > 0) {
    for (const item of items) {
      const getEntry = (item as DataTransferItem & { webkitGetAsEntry?: () => Entry | null }).webkitGetAsEntry;
      const entry = getEntry ? getEntry.call(item) : null;
      const file = item.getAsFile();
      out.push({
        name: entry?.name ?? file?.name ?? '',
        isDirectory: !!entry?.isDirectory,
        path: file ? pathForFile(file) : null,
        file,
        entry,
      });
    }
    return out;
  }
  for (const file of Array.from(dt.files ?? [])) {
    out.push({ name: file.name, isDirectory: false, path: pathForFile(file), file, entry: null });
  }
  return out;
}

/** Every file in the dropped items, folders walked recursively (at most `limit`). */
export async function filesOf(items: readonly DroppedItem[], limit = 100_000): Promise<File[]> {
  const found: { file: File; relativePath: string }[] = [];
  for (const item of items) {
    if (found.length >= limit) break;
    if (item.entry) await walk(item.entry, found, limit);
    else if (item.file) found.push({ file: item.file, relativePath: item.file.name });
  }
  return found.map((f) => f.file);
}

/** Base64 of a file's bytes (what `classify.upload` takes). */
export async function fileToBase64(file: Blob): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(binary);
}
