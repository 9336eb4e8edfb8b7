// ONNX models built once and kept in the user's cache ($XDG_CACHE_HOME/refit/onnx, else
// ~/.cache/refit/onnx; REFIT_CACHE_DIR overrides the refit folder), so that start-up loads a ready
// graph instead of building a TF.js model, reading its weights and converting it on every run.
//
// - Keyed by content: an entry's name is a digest of what it was built from (the source files'
//   SHA-256, the converter's version and the build options), so a changed source makes a new key and
//   the old entry is never used for it (stale = not found = rebuilt).
// - Written atomically: `<key>.onnx` first, then `<key>.json` (its size and CRC-32) — each a temporary
//   file renamed into place — so a reader sees a complete entry or none.
// - Checked on every read: an entry whose size or CRC-32 does not match its record (truncated, damaged,
//   half-written by a crash) is deleted and reported as missing, so the caller rebuilds it.
// - Source digests are remembered by path, size and modification time (`sources.json`), so a
//   98 MB weight package is hashed once, not at every start.
// Nothing here loads TF.js or onnxruntime.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from './atomic-fs';

/** Bumped whenever what a cached graph contains changes (converter, layout of entries). */
export const ONNX_CACHE_FORMAT = 1;

export function refitCacheDir(): string {
  if (process.env.REFIT_CACHE_DIR) return path.resolve(process.env.REFIT_CACHE_DIR);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'refit');
}

export function onnxCacheDir(): string {
  return path.join(refitCacheDir(), 'onnx');
}

interface EntryRecord {
  format: number;
  key: string;
  bytes: number;
  crc32: number;
  created: string;
  /** What the entry was built from, for people reading the cache. */
  about?: unknown;
}

const entryPaths = (key: string, dir = onnxCacheDir()) => ({ model: path.join(dir, `${key}.onnx`), record: path.join(dir, `${key}.json`) });

export type CacheRead = { bytes: Uint8Array; file: string } | { missing: 'absent' | 'damaged'; why?: string };

/** The entry `key`, checked against its record; a damaged one is deleted and reported as such. */
export async function readOnnxCache(key: string, dir = onnxCacheDir()): Promise<CacheRead> {
  const paths = entryPaths(key, dir);
  let record: EntryRecord;
  let bytes: Uint8Array;
  try {
    record = JSON.parse(await readFile(paths.record, 'utf8')) as EntryRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // A model without its record is a write that did not finish: remove it.
      await rm(paths.model, { force: true }).catch(() => undefined);
      return { missing: 'absent' };
    }
    return damaged(paths, `unreadable record: ${(err as Error).message}`);
  }
  try {
    bytes = await readFile(paths.model);
  } catch (err) {
    return damaged(paths, `unreadable model: ${(err as Error).message}`);
  }
  if (record?.format !== ONNX_CACHE_FORMAT || record.key !== key) return damaged(paths, 'record of another key or format');
  if (bytes.byteLength !== record.bytes) return damaged(paths, `${bytes.byteLength} bytes, the record says ${record.bytes}`);
  if (crc32(bytes) !== record.crc32) return damaged(paths, 'CRC-32 mismatch');
  return { bytes, file: paths.model };
}

async function damaged(paths: { model: string; record: string }, why: string): Promise<CacheRead> {
  await Promise.all([rm(paths.record, { force: true }), rm(paths.model, { force: true })]).catch(() => undefined);
  return { missing: 'damaged', why };
}

/** Stores `bytes` as the entry `key` (atomically; a failure to write is not an error for the caller). */
export async function writeOnnxCache(key: string, bytes: Uint8Array, about?: unknown, dir = onnxCacheDir()): Promise<boolean> {
  const paths = entryPaths(key, dir);
  try {
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(paths.model, bytes, { durable: false });
    const record: EntryRecord = { format: ONNX_CACHE_FORMAT, key, bytes: bytes.byteLength, crc32: crc32(bytes), created: new Date().toISOString(), ...(about ? { about } : {}) };
    await writeFileAtomic(paths.record, JSON.stringify(record, null, 2) + '\n', { durable: false });
    return true;
  } catch {
    return false;
  }
}

/** Removes entries whose name starts with `prefix` other than `keep` (older builds of the same thing). */
export async function pruneOnnxCache(prefix: string, keep: readonly string[], dir = onnxCacheDir()): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix) && /\.(onnx|json)$/.test(n) && !keep.includes(n.replace(/\.(onnx|json)$/, '')))
      .map((n) => rm(path.join(dir, n), { force: true }).catch(() => undefined)),
  );
}

/** A short digest of `parts` (strings or numbers), for cache keys. */
export function digestKey(...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

interface SourceMemo {
  [file: string]: { size: number; mtimeMs: number; sha256: string };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The SHA-256 of each file's content, in order. A file whose path, size and modification time are
 * those recorded in the cache's sources.json is not read again.
 */
export async function contentDigests(files: readonly string[], dir = onnxCacheDir()): Promise<string[]> {
  const memoFile = path.join(dir, 'sources.json');
  let memo: SourceMemo = {};
  try {
    memo = JSON.parse(await readFile(memoFile, 'utf8')) as SourceMemo;
    if (typeof memo !== 'object' || memo === null || Array.isArray(memo)) memo = {};
  } catch {
    memo = {};
  }
  let changed = false;
  const digests = await Promise.all(
    files.map(async (file) => {
      const s = await stat(file);
      const known = memo[file];
      if (known && known.size === s.size && known.mtimeMs === s.mtimeMs && /^[0-9a-f]{64}$/.test(known.sha256)) return known.sha256;
      const sha256 = await sha256File(file);
      memo[file] = { size: s.size, mtimeMs: s.mtimeMs, sha256 };
      changed = true;
      return sha256;
    }),
  );
  if (changed) {
    await mkdir(dir, { recursive: true })
      .then(() => writeFileAtomic(memoFile, JSON.stringify(memo) + '\n', { durable: false }))
      .catch(() => undefined);
  }
  return digests;
}
