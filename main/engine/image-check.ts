// Checks one image file for a dataset: content hash, size, and whether it really decodes.
//
// sharp's metadata() only parses the header, so a truncated JPEG or PNG passes it. The cheapest
// reliable check is an actual decode whose output is thrown away (measured on these machines):
//   - small images (≤ 1 Mpx): a plain decode to raw pixels, ~0.45 ms for a 28×28 PNG; a resize
//     pipeline costs twice that per image (fixed libvips overhead);
//   - larger images: a resize to 8×8, which lets JPEG/WebP decode at 1/8 scale (shrink-on-load:
//     4.7 ms instead of 15 ms for a 2400×1800 JPEG) and streams big PNG/TIFF with bounded memory.
// Both read the whole compressed stream, so truncation fails ("premature end of JPEG image",
// "libpng read error"). failOn 'truncated' rejects truncated and broken files but keeps images with
// mere warnings (common in camera JPEGs with extraneous bytes), which decode fine.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { errnoCode, firstLine, fsErrorReason } from './errors';
import type { ProblemKind } from '../api/dataset';
import { FAIL_ON } from './image-decode';

/** What a file's bytes say, cached per path and invalidated by size or modification time. */
export interface ImageFacts {
  size: number;
  mtimeMs: number;
  hash: string;
  width?: number;
  height?: number;
  /** True once a full decode succeeded (skipped for images over the pixel limit). */
  decoded?: boolean;
  problem?: { kind: 'not-image' | 'corrupt'; reason: string };
}

/** A scan cache: a Map<string, ImageFacts> will do; a project keeps one on disk (scan-index.ts). */
export interface ScanCache {
  get(file: string): ImageFacts | undefined;
  set(file: string, facts: ImageFacts): void;
}

export type FileCheck =
  | { ok: true; hash: string; width: number; height: number }
  | { ok: false; kind: ProblemKind; reason: string; hash?: string };

const FULL_DECODE_MAX_PIXELS = 1_000_000;


function ioProblem(err: unknown): FileCheck {
  if (errnoCode(err) === 'ENOENT') return { ok: false, kind: 'missing', reason: 'The file disappeared while it was being scanned' };
  return { ok: false, kind: 'unreadable', reason: `Cannot read the file (${fsErrorReason(err)})` };
}

// libvips keeps one error buffer per process: when images fail while others are being decoded,
// an error can carry another image's message or none ("Unknown error"; seen here: a truncated PNG
// reported as "premature end of JPEG image"). Failures are rare, so a failed step is re-run alone —
// with every other check of this module paused — to get its true outcome and message.
let exclusive: Promise<void> | undefined;
let inFlight = 0;
const onIdle: (() => void)[] = [];

async function shared<T>(step: () => Promise<T>): Promise<T> {
  while (exclusive) await exclusive;
  inFlight++;
  try {
    return await step();
  } finally {
    if (--inFlight === 0) for (const resolve of onIdle.splice(0)) resolve();
  }
}

async function alone<T>(step: () => Promise<T>): Promise<T> {
  while (exclusive) await exclusive;
  let release!: () => void;
  exclusive = new Promise((resolve) => (release = resolve));
  try {
    if (inFlight > 0) await new Promise<void>((resolve) => onIdle.push(resolve));
    return await step();
  } finally {
    exclusive = undefined;
    release();
  }
}

/** Runs `step`; if it fails, runs it again alone for its true outcome (value or error message). */
async function withTrueError<T>(step: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await shared(step) };
  } catch {
    return alone(() => step().then((value) => ({ value }), (err: unknown) => ({ error: firstLine(err) })));
  }
}

async function decodes(bytes: Buffer | string, pixels: number, maxPixels: number): Promise<void> {
  const image = sharp(bytes, { failOn: FAIL_ON, limitInputPixels: maxPixels });
  if (pixels <= FULL_DECODE_MAX_PIXELS) await image.raw().toBuffer();
  else await image.resize(8, 8, { fit: 'inside' }).raw().toBuffer();
}

/** Files above this size are hashed as a stream and decoded from disk, not held in memory whole. */
const IN_MEMORY_MAX_BYTES = 32 * 1024 * 1024;

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `bytes` is the file's content, or its path when it is too big to hold in memory. */
async function examine(file: string, size: number, mtimeMs: number, bytes: Buffer | string, maxPixels: number): Promise<ImageFacts> {
  const hash = typeof bytes === 'string' ? await hashFile(bytes) : createHash('sha256').update(bytes).digest('hex');
  const facts: ImageFacts = { size, mtimeMs, hash };
  const header = await withTrueError(() => sharp(bytes, { limitInputPixels: false }).metadata());
  if ('error' in header) {
    const extension = path.extname(file).toLowerCase();
    facts.problem = !/unsupported image format/i.test(header.error)
      ? { kind: 'corrupt', reason: `Corrupt image header: ${header.error}` }
      : extension === '.bmp'
        ? { kind: 'not-image', reason: 'BMP images cannot be decoded (the image library has no BMP support): convert it to PNG' }
        : { kind: 'not-image', reason: `Not an image Refit can read: the contents are not JPEG, PNG, WebP, GIF, TIFF or AVIF data (despite the ${extension || 'file'} name)` };
    return facts;
  }
  const meta = header.value;
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) {
    facts.problem = { kind: 'corrupt', reason: 'Corrupt image: it has no width or height' };
    return facts;
  }
  facts.width = width;
  facts.height = height;
  if (width * height > maxPixels) return facts; // reported by verdict(), without decoding
  const decode = await withTrueError(() => decodes(bytes, width * height, maxPixels));
  if ('error' in decode) facts.problem = { kind: 'corrupt', reason: `Corrupt or truncated image data: ${decode.error}` };
  else facts.decoded = true;
  return facts;
}

function verdict(facts: ImageFacts, maxPixels: number): FileCheck {
  if (facts.problem) return { ok: false, ...facts.problem, hash: facts.hash };
  const { width = 0, height = 0 } = facts;
  if (width * height > maxPixels) {
    return { ok: false, kind: 'too-large', reason: `Too large: ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels}`, hash: facts.hash };
  }
  return { ok: true, hash: facts.hash, width, height };
}

/**
 * Checks one file: empty, unreadable, not an image, corrupt/truncated, over `maxPixels`, or fine
 * (with its sha-256 and upright width/height). Uses and fills `cache` keyed by path + size + mtime,
 * so an unchanged file is not read again. Never throws for a bad file.
 */
export async function checkImageFile(file: string, maxPixels: number, cache?: ScanCache): Promise<FileCheck> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    return ioProblem(err);
  }
  if (info.size === 0) return { ok: false, kind: 'empty', reason: 'Empty file (0 bytes)' };
  const cached = cache?.get(file);
  let facts = cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs ? cached : undefined;
  const needsDecode = (f: ImageFacts) => !f.problem && !f.decoded && (f.width ?? 0) * (f.height ?? 0) <= maxPixels;
  if (!facts || needsDecode(facts)) {
    let bytes: Buffer | string = file;
    try {
      if (info.size <= IN_MEMORY_MAX_BYTES) bytes = await readFile(file);
    } catch (err) {
      return ioProblem(err);
    }
    try {
      facts = await examine(file, info.size, info.mtimeMs, bytes, maxPixels);
    } catch (err) {
      return ioProblem(err); // reading a large file as a stream failed
    }
    cache?.set(file, facts);
  }
  return verdict(facts, maxPixels);
}
