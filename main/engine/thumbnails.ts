// Small thumbnails for the UI's image grids, as data: URLs: WebP, at most `size` pixels on the longer
// side (never enlarged), EXIF orientation applied, transparency flattened onto white (as training
// sees the image). Cached on disk by content hash and size, so a grid of thousands of images is
// decoded once: <cacheDir>/<first two hex digits>/<sha256>-<size>.webp.
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from './atomic-fs';
import { fsErrorMessage } from './errors';
import { DEFAULT_MAX_INPUT_PIXELS } from './image-decode';

export const DEFAULT_THUMBNAIL_SIZE = 160;
const WEBP_QUALITY = 72;
/** Files larger than this are not thumbnailed (an image this large is refused by the scan too). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

export interface ThumbnailOptions {
  size?: number;
  /** Folder of the on-disk cache; without it nothing is cached. */
  cacheDir?: string;
  /** The file's content hash when already known (from a scan): a cache hit then reads nothing else. */
  hash?: string;
}

const toDataUrl = (webp: Buffer) => `data:image/webp;base64,${webp.toString('base64')}`;

function cacheFile(cacheDir: string, hash: string, size: number): string {
  return path.join(cacheDir, hash.slice(0, 2), `${hash}-${size}.webp`);
}

/**
 * Thumbnails made at once: at most `tasks`, holding at most `bytes` of source files together (a file larger
 * than that is made alone). Further requests wait their turn, so a burst of thumbnails of huge files cannot
 * take the engine's memory with it. Cache hits do not wait.
 */
export const THUMBNAIL_LIMITS = { tasks: 4, bytes: 96 * 1024 * 1024 };

interface Waiter {
  bytes: number;
  go: () => void;
}

const load = { tasks: 0, bytes: 0, peakTasks: 0, peakBytes: 0 };
const waiting: Waiter[] = [];

/** What is being made now, and the most at once since the last reset (for tests and diagnostics). */
export function thumbnailLoad(reset = false): { tasks: number; bytes: number; peakTasks: number; peakBytes: number; waiting: number } {
  const now = { ...load, waiting: waiting.length };
  if (reset) {
    load.peakTasks = load.tasks;
    load.peakBytes = load.bytes;
  }
  return now;
}

function fits(bytes: number): boolean {
  if (load.tasks === 0) return true;
  return load.tasks < THUMBNAIL_LIMITS.tasks && load.bytes + bytes <= THUMBNAIL_LIMITS.bytes;
}

function enter(bytes: number): void {
  load.tasks += 1;
  load.bytes += bytes;
  load.peakTasks = Math.max(load.peakTasks, load.tasks);
  load.peakBytes = Math.max(load.peakBytes, load.bytes);
}

/** Runs `work` when `bytes` more fit in the budget (first come, first served). */
async function withinBudget<T>(bytes: number, work: () => Promise<T>): Promise<T> {
  if (waiting.length > 0 || !fits(bytes)) await new Promise<void>((go) => waiting.push({ bytes, go }));
  else enter(bytes);
  try {
    return await work();
  } finally {
    load.tasks -= 1;
    load.bytes -= bytes;
    while (waiting.length > 0 && fits(waiting[0].bytes)) {
      const next = waiting.shift()!;
      enter(next.bytes);
      next.go();
    }
  }
}

async function statImageFile(file: string): Promise<number> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    const missing = `${file} does not exist (moved or deleted? rescan the dataset)`;
    throw new Error(`Cannot make a thumbnail: ${fsErrorMessage(err, file, { noun: 'image file', missing })}`);
  }
  if (info.isDirectory()) throw new Error(`Cannot make a thumbnail: ${file} is a folder, not an image file`);
  if (info.size === 0) throw new Error(`Cannot make a thumbnail: ${file} is empty (0 bytes)`);
  if (info.size > MAX_FILE_BYTES) throw new Error(`Cannot make a thumbnail: ${file} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MB`);
  return info.size;
}

/** Encodes a thumbnail of the image bytes `data` (see the top of this file). */
export async function renderThumbnail(data: Buffer, size = DEFAULT_THUMBNAIL_SIZE, what = 'the image'): Promise<Buffer> {
  try {
    return await sharp(data, { limitInputPixels: DEFAULT_MAX_INPUT_PIXELS, autoOrient: true })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: WEBP_QUALITY })
      .toBuffer();
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    if (/unsupported image format/i.test(message)) throw new Error(`Cannot make a thumbnail of ${what}: it is not an image sharp can read`);
    if (/pixel limit/i.test(message)) throw new Error(`Cannot make a thumbnail of ${what}: it has more than ${DEFAULT_MAX_INPUT_PIXELS} pixels`);
    throw new Error(`Cannot make a thumbnail of ${what}: corrupt or truncated image data (${message})`);
  }
}

/** A thumbnail of the image file `file` as a data: URL, from the cache when possible. */
export async function thumbnailDataUrl(file: string, options: ThumbnailOptions = {}): Promise<string> {
  const size = options.size ?? DEFAULT_THUMBNAIL_SIZE;
  const { cacheDir } = options;
  if (cacheDir && options.hash) {
    const cached = await readFile(cacheFile(cacheDir, options.hash, size)).catch(() => undefined);
    if (cached) return toDataUrl(cached);
  }
  const fileBytes = await statImageFile(file);
  const made = await withinBudget(fileBytes, async () => {
    const data = await readFile(file);
    if (data.length > MAX_FILE_BYTES) throw new Error(`Cannot make a thumbnail: ${file} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MB`);
    const hash = createHash('sha256').update(data).digest('hex');
    const target = cacheDir ? cacheFile(cacheDir, hash, size) : undefined;
    if (target && hash !== options.hash) {
      const cached = await readFile(target).catch(() => undefined);
      if (cached) return { webp: cached, target: undefined };
    }
    return { webp: await renderThumbnail(data, size, file), target };
  });
  const { webp, target } = made;
  if (target) {
    // The cache is only a cache: failing to write it (read-only project, full disk) costs a re-render.
    await mkdir(path.dirname(target), { recursive: true })
      .then(() => writeFileAtomic(target, webp))
      .catch(() => undefined);
  }
  return toDataUrl(webp);
}
